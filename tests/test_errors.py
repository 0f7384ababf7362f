"""One error shape everywhere: {"error": {"code": str, "message": str, "details"?: obj}},
served as JSON for our own errors, aiohttp's (unknown route, wrong method) and crashes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server

pytestmark = pytest.mark.asyncio


def assert_shape(body: Any) -> None:
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) <= {"code", "message", "details"}
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code"), [
    ("GET", "/api/v1/nothing-here", {}, 404, "not_found"),
    ("DELETE", "/api/v1/server", {}, 405, "method_not_allowed"),
    ("POST", "/api/v1/admin/sessions", {"data": b"{", "headers": {"Content-Type": "application/json"}},
     400, "invalid_json"),
    ("POST", "/api/v1/admin/sessions", {"json": {"title": ""}}, 422, "invalid_body"),
    ("POST", "/api/v1/admin/sessions", {"data": "x"}, 415, "unsupported_media_type"),
    ("GET", "/api/v1/admin/contents/missing", {}, 404, "not_found"),
    ("PATCH", "/api/v1/admin/contents/missing", {"json": {"title": "x"}}, 404, "not_found"),
    ("PATCH", "/api/v1/admin/contents/missing", {"json": {"colour": "red"}}, 422, "invalid_body"),
    ("POST", "/api/v1/uploads", {"headers": {"Tus-Resumable": "1.0.0"}}, 400, "bad_request"),
])
async def test_error_shape(server: Server, method: str, path: str, kwargs: dict[str, Any],
                           status: int, code: str) -> None:
    async with server.http.request(method, path, **kwargs) as r:
        assert r.status == status
        assert r.content_type == "application/json"
        body = await r.json()
    assert_shape(body)
    assert body["error"]["code"] == code


async def test_405_names_allowed_methods(server: Server) -> None:
    async with server.http.delete("/api/v1/server") as r:
        assert "GET" in r.headers["Allow"]

"""One error shape everywhere: {"error": {"code": str, "message": str (Chinese),
"message_en": str (English), "details"?: obj}}, served as JSON for our own errors,
aiohttp's (unknown route, wrong method) and crashes. Chinese comes from one table
code -> template, filled from the details where the raise site gave them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server

pytestmark = pytest.mark.asyncio


def assert_shape(body: Any) -> None:
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) <= {"code", "message", "message_en", "details"}
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["message_en"], str) and err["message_en"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err["message"]), err  # Chinese first
    assert err["message"] != err["message_en"]


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
    ("POST", "/api/v1/uploads", {"headers": {"Tus-Resumable": "1.0.0"}}, 400, "missing_header"),
    ("POST", "/api/v1/uploads", {"headers": {"Tus-Resumable": "1.0.0", "Upload-Length": "²"}},
     400, "bad_number"),
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


async def test_chinese_message_is_specific_from_details(server: Server) -> None:
    headers = {"Tus-Resumable": "1.0.0", "Upload-Length": "１２"}
    async with server.http.post("/api/v1/uploads", headers=headers) as r:
        assert r.status == 400
        err = (await r.json())["error"]
    assert err["code"] == "bad_number"
    assert "Upload-Length" in err["message"] and "0–9" in err["message"]
    assert err["details"]["name"] == "Upload-Length"
    assert "ASCII" in err["message_en"]


async def test_invalid_body_names_the_field(server: Server) -> None:
    async with server.http.patch("/api/v1/admin/contents/missing", json={"title": 5}) as r:
        err = (await r.json())["error"]
    assert err["code"] == "invalid_body"
    assert "$.title" in err["message"] and "$.title" in err["message_en"]


async def test_every_code_raised_has_chinese() -> None:
    import re

    from server.messages import ZH
    from tests.conftest import REPO
    raised = set()
    for path in (REPO / "server").rglob("*.py"):
        raised |= set(re.findall(r'code="([a-z_]+)"', path.read_text(encoding="utf-8")))
    from server.errors import HTTP_CODES, ServerError
    classes = {c.code for c in _subclasses(ServerError)}
    missing = (raised | classes | set(HTTP_CODES.values())) - set(ZH)
    assert not missing


def _subclasses(cls: type) -> list[type]:
    out = [cls]
    for sub in cls.__subclasses__():
        out += _subclasses(sub)
    return out

"""The OpenAPI document at /api/v1/openapi.json is valid OpenAPI 3.1, names every route
the server answers (and no other), and live answers fit the schemas it gives."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from tests import tusclient
from tests.conftest import COUNTY, Server

pytestmark = pytest.mark.asyncio


async def document(server: Server) -> dict[str, Any]:
    async with server.http.get("/api/v1/openapi.json") as r:
        assert r.status == 200
        return dict(await r.json())


async def test_document_is_valid_openapi(server: Server) -> None:
    # validating a document this size takes most of a second: off the loop
    await asyncio.to_thread(validate, await document(server))


async def test_every_route_documented_and_nothing_else(server: Server) -> None:
    doc = await document(server)
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = set()
    for route in server.running.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix", "")
        if path == "/api/v1/openapi.json" or not path.startswith(("/api/", "/blobs/")):
            continue  # the document itself, and the console page with its static files
        served.add((route.method, path))
    assert served == documented


def _validator(doc: dict[str, Any], path: str, method: str, status: str = "200") -> Any:
    schema = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    resolver_doc = {**schema, "components": doc["components"]}
    return jsonschema.Draft202012Validator(resolver_doc)


async def test_live_answers_fit_their_schemas(server: Server, clip: Path) -> None:
    doc = await document(server)
    r = await tusclient.upload(server.http, clip.read_bytes(), title="片")
    content_id = r.headers["Yuanjiao-Content-Id"]
    async with server.http.post("/api/v1/admin/assignments", json={
            "content_id": content_id, "scope": "county"}) as a:
        assert a.status == 201
    async with server.http.post("/api/v1/admin/members/import",
                                data=(COUNTY / "members-sample-gbk.csv").read_bytes()) as m:
        assert m.status == 200
    checks = [
        ("/api/v1/server", "/api/v1/server"),
        ("/api/v1/admin/contents", "/api/v1/admin/contents"),
        (f"/api/v1/admin/contents/{content_id}", "/api/v1/admin/contents/{content_id}"),
        ("/api/v1/admin/assignments", "/api/v1/admin/assignments"),
        ("/api/v1/admin/units", "/api/v1/admin/units"),
        ("/api/v1/admin/villages", "/api/v1/admin/villages"),
        ("/api/v1/admin/fleet", "/api/v1/admin/fleet"),
        ("/api/v1/admin/readiness", "/api/v1/admin/readiness"),
        ("/api/v1/admin/reports/coverage", "/api/v1/admin/reports/coverage"),
        ("/api/v1/admin/reports/terminals", "/api/v1/admin/reports/terminals"),
        ("/api/v1/terminals/T140121100001/catalog", "/api/v1/terminals/{terminal_id}/catalog"),
        ("/api/v1/terminals/T140121100001/roster", "/api/v1/terminals/{terminal_id}/roster"),
    ]
    t1 = await server.as_terminal("T140121100001")
    for url, path in checks:
        http = t1 if url.startswith("/api/v1/terminals/") else server.http
        async with http.get(url) as resp:
            assert resp.status == 200, url
            _validator(doc, path, "get").validate(await resp.json())
    async with server.http.get("/api/v1/admin/contents/nope") as resp:
        assert resp.status == 404
        _validator(doc, "/api/v1/admin/contents/{content_id}", "get", "404").validate(await resp.json())

"""The OpenAPI 3.1 document, generated from the route table and the msgspec models."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec
from aiohttp import web

from server import __version__
from server.api.jsonio import FORMATS, XLSX_TYPE
from server.api.params import FLAG_FALSE, FLAG_TRUE
from server.api.tus import TUS_VERSION
from server.routes import ENDPOINTS, Endpoint
from shared.protocol import ErrorBody

_PARAM = re.compile(r"{(\w+)}")
DATE: dict[str, Any] = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
# What the handlers accept in each query parameter, exactly (server.api.params, jsonio).
QUERY: dict[str, tuple[bool, dict[str, Any]]] = {  # name: (required, schema)
    "from": (False, DATE), "to": (False, DATE), "since": (False, DATE),
    "q": (True, {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "\\S"}),
    "challenge": (False, {"type": "string", "pattern": "^[A-Za-z0-9]{16,128}$"}),
    "dry_run": (False, {"type": "string", "enum": [*FLAG_TRUE, *FLAG_FALSE]}),
    "limit": (False, {"type": "integer", "minimum": 1, "maximum": 200}),
    "unit": (False, {"type": "string"}),
    # terminal ids heard on the asking terminal's LAN, comma-separated (the first 64 are read)
    "lan": (False, {"type": "string"}),
}
_B64 = "(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
_META_PAIR = f"[^\\s,]+(?: {_B64})?"


MAX_HEADER = 8000  # aiohttp refuses longer header lines (8190 bytes) before any handler


def headers_schema(max_upload_bytes: int) -> dict[str, tuple[bool, dict[str, Any]]]:
    """The request headers the tus handler reads: name -> (required, schema). The
    metadata's structure is described; what the values must say (a title of at most 200
    characters, a known kind, UTF-8 text) is checked by the server, 400 otherwise."""
    return {
        "Tus-Resumable": (True, {"type": "string", "enum": [TUS_VERSION]}),
        "Upload-Length": (True, {"type": "integer", "minimum": 1, "maximum": max_upload_bytes}),
        "Upload-Offset": (True, {"type": "integer", "minimum": 0}),
        # Required in practice: the upload needs a title (or a file name to take it from).
        "Upload-Metadata": (True, {"type": "string", "maxLength": MAX_HEADER,
                                    "pattern": f"^{_META_PAIR}(?:,{_META_PAIR})*$"}),
        "Upload-Checksum": (False, {"type": "string", "pattern": f"^(?:sha1|sha256) {_B64}$"}),
        # Without it a POST to an upload is tus's 405 (Allow: the upload's methods).
        "X-HTTP-Method-Override": (False, {"type": "string", "enum": ["PATCH", "DELETE"]}),
    }


_TAGS = {"public": "server", "uploads": "uploads (tus 1.0.0)", "blobs": "blobs",
         "admin": "admin", "terminal": "terminal"}


def _schema_ref(model: object, refs: list[object]) -> dict[str, Any]:
    if model is bytes:
        return {"type": "string", "format": "binary"}
    refs.append(model)
    return {"$placeholder": len(refs) - 1}


def build(max_upload_bytes: int = 8 << 30) -> dict[str, Any]:
    """The document; `max_upload_bytes` is the server's setting (Upload-Length's maximum)."""
    refs: list[object] = []
    paths: dict[str, dict[str, Any]] = {}
    headers = headers_schema(max_upload_bytes)
    for e in ENDPOINTS:
        paths.setdefault(e.path, {})[e.method.lower()] = _operation(e, refs, headers)
    error_index = len(refs)
    refs.append(ErrorBody)
    schemas, components = msgspec.json.schema_components(
        refs, ref_template="#/components/schemas/{name}"
    )
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Yuanjiao county content server", "version": __version__,
                 "description": "Distance-learning content, fleet and attendance for a county."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiToken": {"type": "http", "scheme": "bearer",
                             "description": "an admin API token (yja_...)"},
                "terminalToken": {"type": "http", "scheme": "bearer",
                                  "description": "a terminal's enrollment token (yjt_...)"},
                "consoleSession": {"type": "apiKey", "in": "cookie", "name": "yj_session",
                                   "description": "the console's session; writes also need "
                                                  "the X-CSRF-Token header"},
            },
        },
    }
    _fill(doc, schemas, error_index)
    return doc


def _operation(e: Endpoint, refs: list[object],
               headers: dict[str, tuple[bool, dict[str, Any]]]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(e.path)
    ]
    params += [{"name": q, "in": "query", "required": QUERY[q][0], "schema": QUERY[q][1]}
               for q in e.query]
    county_view = e.county and e.method == "GET"
    if county_view:  # the province's account reading one county (server/auth/policy.py)
        params.append({"name": "county", "in": "query", "required": False,
                       "schema": {"type": "string", "pattern": "^[0-9]{6}$"}})
    if e.csv:
        params.append({"name": "format", "in": "query", "required": False,
                       "schema": {"type": "string", "enum": list(FORMATS)}})
    params += [{"name": h, "in": "header", "required": headers[h][0], "description": d,
                "schema": headers[h][1]} for h, d in e.headers.items()]
    op: dict[str, Any] = {
        "operationId": f"{e.method.lower()}_{e.handler.__module__.rsplit('.', 1)[-1]}_"
                       f"{e.handler.__name__}",
        "summary": e.summary,
        "tags": [_TAGS[e.group]],
        "parameters": params,
    }
    if e.request is not None:
        op["requestBody"] = {"required": not e.request_optional,
                             "content": {e.request_media: {"schema": _schema_ref(e.request, refs)}}}
    ok: dict[str, Any] = {"description": "success"}
    if e.response is not None and e.method != "HEAD":
        media = "application/octet-stream" if e.response is bytes else "application/json"
        ok["content"] = {media: {"schema": _schema_ref(e.response, refs)}}
        if e.csv:
            ok["content"]["text/csv"] = {"schema": {"type": "string"}}
            ok["content"][XLSX_TYPE] = {"schema": {"type": "string", "format": "binary"}}
    responses: dict[str, Any] = {str(e.status): ok}
    if e.group == "blobs" and e.method == "GET":
        responses["206"] = {"description": "the requested byte range",
                            "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                "format": "binary"}}}}
    guarded = e.group in ("admin", "uploads", "terminal", "blobs") and not (
        e.group == "uploads" and e.method == "OPTIONS")
    if e.group in ("admin", "uploads") and guarded:
        op["security"] = [{"apiToken": []}, {"consoleSession": []}]
    elif e.group == "terminal":
        op["security"] = [{"terminalToken": []}]
    elif e.group == "blobs":
        op["security"] = [{"terminalToken": []}, {"apiToken": []}, {"consoleSession": []}]
    # A JSON body can be malformed (400 invalid_json), of another type (415) or not fit
    # its model (422 invalid_body), whatever the endpoint.
    json_body = e.request is not None and e.request is not bytes
    errors = sorted(set(e.errors) | ({401, 403} if guarded else set())
                    | ({400, 415, 422} if json_body else set())
                    | ({400} if e.query or e.csv else set())
                    | ({400, 404} if county_view else set()))
    for code in errors:
        if code == 304:
            responses["304"] = {"description": "not modified"}
        elif code == 307:
            responses["307"] = {"description": "the bytes are at Location (a media bucket or its CDN)"}
        else:
            responses[str(code)] = {"description": "error", "$error": True}
    op["responses"] = responses
    return op


def _fill(node: Any, schemas: Sequence[dict[str, Any]], error_index: int) -> None:
    """Swap placeholders for the generated schema references."""
    if isinstance(node, dict):
        if "$placeholder" in node:
            i = node.pop("$placeholder")
            node.update(schemas[i])
        if node.pop("$error", False):
            node["content"] = {"application/json": {"schema": dict(schemas[error_index])}}
        for value in node.values():
            _fill(value, schemas, error_index)
    elif isinstance(node, list):
        for value in node:
            _fill(value, schemas, error_index)


def handler(doc: dict[str, Any]) -> Any:
    body = msgspec.json.encode(doc)

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    return openapi

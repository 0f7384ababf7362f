"""Resumable uploads over HTTP: tus 1.0.0 core, creation, checksum and termination.

This module only speaks tus: it parses and checks the headers (strictly, via
`server.api.params`), calls the upload domain (`server.uploads.Uploads`), and puts its
answers and errors into tus headers. What happens to the bytes is described there.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Final

from aiohttp import web

from server.api.params import int_header
from server.api.scope import county_of
from server.appkeys import CONFIG, UPLOADS
from server.config import ServerConfig
from server.errors import BadRequest, PreconditionFailed, ServiceUnavailable, UnsupportedMediaType
from server.uploads import CHECKSUMS, Checksum

TUS_VERSION: Final = "1.0.0"
UPLOADS_PATH: Final = "/api/v1/uploads"
EXTENSIONS: Final = "creation,checksum,termination"
CONTENT_ID_HEADER: Final = "Yuanjiao-Content-Id"
SHA256_HEADER: Final = "Yuanjiao-Sha256"


def tus_headers(config: ServerConfig) -> dict[str, str]:
    return {
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": EXTENSIONS,
        "Tus-Max-Size": str(config.max_upload_bytes),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
    }


def _check_version(request: web.Request) -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise PreconditionFailed(
            f"this server speaks tus {TUS_VERSION}; send Tus-Resumable: {TUS_VERSION}",
            code="tus_version",
        )


def _checksum(request: web.Request) -> Checksum | None:
    raw = request.headers.get("Upload-Checksum")
    if raw is None:
        return None
    algo, _, b64 = raw.strip().partition(" ")
    if algo not in CHECKSUMS:
        raise BadRequest(f"checksum algorithm {algo!r} is not supported (use sha1 or sha256)")
    try:
        expected = base64.b64decode(b64, validate=True)
    except binascii.Error:
        raise BadRequest("Upload-Checksum value is not base64") from None
    return Checksum(algo, expected)


def _http_date(when: datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S GMT")


# --- handlers ------------------------------------------------------------------------


async def options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=tus_headers(request.app[CONFIG]))


async def create(request: web.Request) -> web.Response:
    _check_version(request)
    if "Upload-Defer-Length" in request.headers:
        raise BadRequest("Upload-Defer-Length is not supported; send Upload-Length")
    length = int_header(request, "Upload-Length")
    upload_id, expires = await request.app[UPLOADS].create(
        length, request.headers.get("Upload-Metadata"), county_of(request))
    return web.Response(
        status=201,
        headers={"Location": f"{UPLOADS_PATH}/{upload_id}", "Upload-Offset": "0",
                 "Upload-Expires": _http_date(expires)},
    )


async def method_override(request: web.Request) -> web.StreamResponse:
    """POST + `X-HTTP-Method-Override: PATCH|DELETE`, for clients behind proxies that pass
    only GET and POST (tus core requires servers to honour it)."""
    wanted = request.headers.get("X-HTTP-Method-Override", "").strip().upper()
    if wanted == "PATCH":
        return await patch(request)
    if wanted == "DELETE":
        return await delete(request)
    raise web.HTTPMethodNotAllowed(
        "POST", ["HEAD", "PATCH", "DELETE", "OPTIONS"],
        text="POST to an upload needs X-HTTP-Method-Override: PATCH or DELETE",
    )


async def head(request: web.Request) -> web.Response:
    row = await request.app[UPLOADS].get(request.match_info["upload_id"], county_of(request))
    if row.content_id is None and row.offset == row.length:
        # Whole, but not content yet (being stored, or waiting for the media bucket): a
        # tus client would take offset == length for done. Ask it to come back instead.
        retry = str(max(1, round(request.app[CONFIG].store_retry_seconds)))
        raise ServiceUnavailable(
            "the upload has all its bytes and is being stored; ask again later",
            code="upload_storing", details={"retry_after": retry},
            headers={"Retry-After": retry, "Upload-Offset": str(row.offset),
                     "Upload-Length": str(row.length), "Cache-Control": "no-store"})
    headers = {
        "Upload-Offset": str(row.offset),
        "Upload-Length": str(row.length),
        "Cache-Control": "no-store",
    }
    if row.metadata:
        headers["Upload-Metadata"] = row.metadata
    if row.content_id:
        headers[CONTENT_ID_HEADER] = row.content_id
    return web.Response(status=200, headers=headers)


async def delete(request: web.Request) -> web.Response:
    _check_version(request)
    await request.app[UPLOADS].terminate(request.match_info["upload_id"], county_of(request))
    return web.Response(status=204)


async def patch(request: web.Request) -> web.Response:
    _check_version(request)
    if request.content_type != "application/offset+octet-stream":
        raise UnsupportedMediaType("PATCH bodies must be Content-Type: application/offset+octet-stream")
    client_offset = int_header(request, "Upload-Offset")
    checksum = _checksum(request)
    done = await request.app[UPLOADS].append(
        request.match_info["upload_id"], client_offset, request.content, request.content_length,
        checksum, county_of(request))
    headers = {"Upload-Offset": str(done.offset)}
    if done.content_id is not None and done.sha256 is not None:
        headers.update({CONTENT_ID_HEADER: done.content_id, SHA256_HEADER: done.sha256})
    return web.Response(status=204, headers=headers)

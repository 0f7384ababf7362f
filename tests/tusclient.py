"""A small tus 1.0.0 client over aiohttp, for driving the real endpoint in tests."""

from __future__ import annotations

import base64
import hashlib

import aiohttp

TUS = {"Tus-Resumable": "1.0.0"}


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


async def create(http: aiohttp.ClientSession, length: int, **meta: str) -> aiohttp.ClientResponse:
    headers = {**TUS, "Upload-Length": str(length)}
    if meta:
        headers["Upload-Metadata"] = metadata(**meta)
    async with http.post("/api/v1/uploads", headers=headers) as r:
        await r.read()
        return r


async def patch(
    http: aiohttp.ClientSession, location: str, offset: int, data: bytes,
    checksum: str | None = None,
) -> aiohttp.ClientResponse:
    headers = {**TUS, "Upload-Offset": str(offset),
               "Content-Type": "application/offset+octet-stream"}
    if checksum:
        digest = hashlib.new(checksum, data).digest()
        headers["Upload-Checksum"] = f"{checksum} {base64.b64encode(digest).decode()}"
    async with http.patch(location, data=data, headers=headers) as r:
        await r.read()
        return r


async def upload(
    http: aiohttp.ClientSession, data: bytes, chunk: int = 1 << 20, **meta: str
) -> aiohttp.ClientResponse:
    """Create and send a whole file; returns the last PATCH's response."""
    created = await create(http, len(data), **meta)
    assert created.status == 201, created.status
    location = created.headers["Location"]
    offset = 0
    while True:
        r = await patch(http, location, offset, data[offset:offset + chunk], checksum="sha256")
        if r.status != 204:
            return r
        offset = int(r.headers["Upload-Offset"])
        if offset == len(data):
            return r

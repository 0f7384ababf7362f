"""A real HTTP proxy in front of the real server, for tests: it forwards every request,
counts the body bytes of each `/blobs/` answer it passes on, and can flip one byte of a
blob at a chosen file offset the first time (or every time) that byte goes through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class BlobProxy:
    upstream: str
    corrupt_at: int | None = None  # file offset of the byte to flip
    corrupt_times: int = 1
    url: str = ""
    ranges: list[str | None] = field(default_factory=list)  # Range of each blob request
    blob_bytes: int = 0  # body bytes of blob answers passed on (what the link carried)
    corrupted: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        blob = request.path.startswith("/blobs/")
        if blob:
            self.ranges.append(request.headers.get("Range"))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        body = await request.read()
        async with aiohttp.ClientSession(auto_decompress=False) as http, http.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body or None,
        ) as up:
            out = web.StreamResponse(status=up.status, headers={
                k: v for k, v in up.headers.items() if k.lower() not in _HOP})
            if up.content_length is not None:
                out.content_length = up.content_length
            await out.prepare(request)
            pos = 0
            if up.status == 206:
                pos = int(up.headers["Content-Range"].split()[1].split("-")[0])
            try:
                async for block in up.content.iter_chunked(64 * 1024):
                    if blob:
                        block = self._maybe_corrupt(pos, block)
                        self.blob_bytes += len(block)
                    pos += len(block)
                    await out.write(block)
            except (ConnectionResetError, aiohttp.ClientConnectionError):
                return out  # the client hung up: what it took is counted
            await out.write_eof()
            return out

    def _maybe_corrupt(self, pos: int, block: bytes) -> bytes:
        at = self.corrupt_at
        if at is None or self.corrupted >= self.corrupt_times or not pos <= at < pos + len(block):
            return block
        self.corrupted += 1
        flipped = bytearray(block)
        flipped[at - pos] ^= 0xFF
        return bytes(flipped)


@asynccontextmanager
async def blob_proxy(upstream: str, **kw: object) -> AsyncIterator[BlobProxy]:
    proxy = BlobProxy(upstream.rstrip("/"), **kw)  # type: ignore[arg-type]
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    proxy.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield proxy
    finally:
        await runner.cleanup()

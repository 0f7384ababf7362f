"""The downloader appends only what continues its file exactly, and never keeps bytes
that do not hash right.

A small real HTTP server (aiohttp on port 0) answers range requests wrongly on purpose:
the whole file (200) instead of the rest, a 206 starting at another offset, a 206
claiming another total size, or a 206 to a request with no range at all. Each time the
terminal starts the file again from byte 0 (a 200 is written from the start) and ends
with exactly the right bytes, or with no file: never a stitched one. A prefix that
does not belong to the file is caught by the hash, removed, and fetched cleanly next
time. An honest server's 206 resumes from the kept offset.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from terminal.errors import HashMismatch, RangeMismatch
from terminal.storage.downloader import Downloader

pytestmark = pytest.mark.asyncio
BODY = os.urandom(300_000)
SHA = hashlib.sha256(BODY).hexdigest()
KEPT = 100_000


@dataclass
class Blobs:
    mode: str = "honest"
    ranges: list[str | None] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        asked = request.headers.get("Range")
        self.ranges.append(asked)
        size = len(BODY)
        start = int(asked.split("=")[1].rstrip("-")) if asked else None
        if self.mode == "always-206":
            return web.Response(status=206, body=BODY[5:],
                                headers={"Content-Range": f"bytes 5-{size - 1}/{size}"})
        if start is None:
            return web.Response(body=BODY)
        if self.mode == "ignore-range":
            return web.Response(body=BODY)
        if self.mode == "wrong-start":
            s = start - 10
            return web.Response(status=206, body=BODY[s:],
                                headers={"Content-Range": f"bytes {s}-{size - 1}/{size}"})
        if self.mode == "wrong-total":
            return web.Response(status=206, body=BODY[start:],
                                headers={"Content-Range": f"bytes {start}-{size - 1}/{size + 5}"})
        if self.mode == "no-content-range":
            return web.Response(status=206, body=BODY[start:])
        return web.Response(status=206, body=BODY[start:],
                            headers={"Content-Range": f"bytes {start}-{size - 1}/{size}"})


@pytest.fixture
async def blobs() -> AsyncIterator[tuple[Blobs, str]]:
    state = Blobs()
    app = web.Application()
    app.router.add_get("/blobs/{sha}", state.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield state, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _prefix(part: Path, data: bytes) -> None:
    await asyncio.to_thread(part.write_bytes, data)


async def _read(path: Path) -> bytes:
    return await asyncio.to_thread(path.read_bytes)


async def test_honest_206_resumes_from_the_kept_offset(blobs: tuple[Blobs, str], tmp_path: Path) -> None:
    state, url = blobs
    part, dest = tmp_path / f"{SHA}.part", tmp_path / SHA
    await _prefix(part, BODY[:KEPT])
    async with aiohttp.ClientSession() as http:
        fetched = await Downloader(http).fetch(url, SHA, len(BODY), part, dest)
    assert fetched.resumed_from == KEPT and fetched.restarts == 0
    assert state.ranges == [f"bytes={KEPT}-"]
    assert await _read(dest) == BODY
    assert not part.exists()


@pytest.mark.parametrize("mode", ["wrong-start", "wrong-total", "no-content-range"])
async def test_unusable_206_restarts_the_file_cleanly(
    blobs: tuple[Blobs, str], tmp_path: Path, mode: str,
) -> None:
    state, url = blobs
    state.mode = mode
    part, dest = tmp_path / f"{SHA}.part", tmp_path / SHA
    await _prefix(part, BODY[:KEPT])
    async with aiohttp.ClientSession() as http:
        fetched = await Downloader(http).fetch(url, SHA, len(BODY), part, dest)
    assert state.ranges == [f"bytes={KEPT}-", None]  # then the whole file, from byte 0
    assert fetched.restarts == 1 and fetched.resumed_from == 0
    assert await _read(dest) == BODY


async def test_200_instead_of_206_is_written_from_the_start(
    blobs: tuple[Blobs, str], tmp_path: Path,
) -> None:
    state, url = blobs
    state.mode = "ignore-range"
    part, dest = tmp_path / f"{SHA}.part", tmp_path / SHA
    await _prefix(part, BODY[:KEPT])
    async with aiohttp.ClientSession() as http:
        await Downloader(http).fetch(url, SHA, len(BODY), part, dest)
    assert state.ranges == [f"bytes={KEPT}-"]
    assert await _read(dest) == BODY  # not the kept prefix followed by the whole file


async def test_a_server_that_never_answers_right_leaves_no_file(
    blobs: tuple[Blobs, str], tmp_path: Path,
) -> None:
    state, url = blobs
    state.mode = "always-206"
    part, dest = tmp_path / f"{SHA}.part", tmp_path / SHA
    async with aiohttp.ClientSession() as http:
        with pytest.raises(RangeMismatch):
            await Downloader(http).fetch(url, SHA, len(BODY), part, dest)
    assert not dest.exists()
    assert not part.exists() or part.stat().st_size == 0


async def test_a_foreign_prefix_is_caught_by_the_hash(blobs: tuple[Blobs, str], tmp_path: Path) -> None:
    state, url = blobs
    part, dest = tmp_path / f"{SHA}.part", tmp_path / SHA
    await _prefix(part, os.urandom(KEPT))  # e.g. garbage left by a power cut
    async with aiohttp.ClientSession() as http:
        downloader = Downloader(http)
        with pytest.raises(HashMismatch):
            await downloader.fetch(url, SHA, len(BODY), part, dest)
        assert not dest.exists() and not part.exists()
        await downloader.fetch(url, SHA, len(BODY), part, dest)
    assert state.ranges == [f"bytes={KEPT}-", None]
    assert await _read(dest) == BODY

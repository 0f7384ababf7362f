"""A standard tus client works unchanged: tuspy uploads a clip in chunks, with and
without its sha1 Upload-Checksum, resumes an interrupted upload, and the server ends
up holding the content."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from tusclient import client as tus

from tests.conftest import Server

pytestmark = pytest.mark.asyncio


async def contents(server: Server) -> list[dict[str, object]]:
    async with server.http.get("/api/v1/admin/contents") as r:
        return list(await r.json())


@pytest.mark.parametrize("checksum", [False, True])
async def test_tuspy_uploads(server: Server, clip: Path, checksum: bool) -> None:
    def upload() -> str:
        c = tus.TusClient(f"{server.url}/api/v1/uploads", headers=dict(server.http.headers))
        uploader = c.uploader(str(clip), chunk_size=30_000, upload_checksum=checksum,
                              metadata={"title": "标准客户端上传", "kind": "lecture",
                                        "filename": clip.name})
        uploader.upload()
        return str(uploader.url)

    url = await asyncio.to_thread(upload)
    assert "/api/v1/uploads/" in url
    held = await contents(server)
    assert [(c["title"], c["kind"], c["sha256"]) for c in held] == [
        ("标准客户端上传", "lecture", hashlib.sha256(clip.read_bytes()).hexdigest())]


async def test_tuspy_resumes(server: Server, clip: Path) -> None:
    size = clip.stat().st_size

    def first_part() -> str:
        c = tus.TusClient(f"{server.url}/api/v1/uploads", headers=dict(server.http.headers))
        uploader = c.uploader(str(clip), chunk_size=20_000, metadata={"title": "续传"})
        uploader.upload(stop_at=40_000)
        assert uploader.offset == 40_000
        return str(uploader.url)

    url = await asyncio.to_thread(first_part)

    def resume() -> int:
        c = tus.TusClient(f"{server.url}/api/v1/uploads", headers=dict(server.http.headers))
        uploader = c.uploader(str(clip), url=url, chunk_size=20_000)
        assert uploader.offset == 40_000  # asked the server with HEAD
        uploader.upload()
        return int(uploader.offset)

    assert await asyncio.to_thread(resume) == size
    assert len(await contents(server)) == 1

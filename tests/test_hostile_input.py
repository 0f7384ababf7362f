"""Hostile uploads: playlists that point elsewhere (HLS, concat), a renamed executable,
empty and cut files, and codecs the terminals cannot play. Each gets a clear 4xx, and
nothing is stored: no content row, no file in the media store, no upload left over."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import tusclient
from tests.conftest import Server

pytestmark = pytest.mark.asyncio

HLS = b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://198.51.100.7/seg0.ts\n#EXT-X-ENDLIST\n"
CONCAT = b"ffconcat version 1.0\nfile '/etc/passwd'\nfile 'http://198.51.100.7/x.mp4'\n"
ELF = b"\x7fELF\x02\x01\x01" + bytes(2000)


async def assert_nothing_stored(server: Server) -> None:
    async with server.http.get("/api/v1/admin/contents") as r:
        assert await r.json() == []
    assert [p for p in server.config.media_dir.rglob("*") if p.is_file()] == []
    assert list(server.config.uploads_dir.glob("*.part")) == []


@pytest.mark.parametrize(("name", "body"), [
    ("playlist.m3u8", HLS), ("list.ffconcat", CONCAT), ("film.mp4", ELF),
    ("film.mp4", b"\x00" * 4096),
])
async def test_not_a_video(server: Server, name: str, body: bytes) -> None:
    r = await tusclient.upload(server.http, body, filename=name, title="t")
    assert r.status == 422
    error = (await r.json())["error"]
    assert error["code"] == "unreadable_video" and error["message_en"].startswith("not accepted")
    await assert_nothing_stored(server)


async def test_unsupported_codec(server: Server, tmp_path: Path) -> None:
    odd = tmp_path / "odd.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=5", "-t", "1", "-c:v", "ffv1", str(odd)], check=True)
    r = await tusclient.upload(server.http, odd.read_bytes(), title="t")
    assert r.status == 422
    error = (await r.json())["error"]
    assert error["code"] == "unsupported_codec"
    for message in (error["message"], error["message_en"]):
        assert "ffv1" in message and "H.264" in message
    await assert_nothing_stored(server)


async def test_long_and_strange_names_are_refused_before_any_byte(server: Server) -> None:
    for meta in [{"filename": "a" * 5000, "title": "t"}, {"filename": "x\x00.mp4", "title": "t"},
                 {"title": "t" * 201}, {"title": "t", "description": "d" * 5000}]:
        r = await tusclient.create(server.http, 100, **meta)
        assert r.status == 400, meta
    assert list(server.config.uploads_dir.glob("*.part")) == []


async def test_absolute_path_name_is_display_only(server: Server, clip: Path) -> None:
    r = await tusclient.upload(server.http, clip.read_bytes(), filename="/etc/cron.d/evil.mp4",
                               title="片")
    assert r.status == 204
    async with server.http.get(f"/api/v1/admin/contents/{r.headers['Yuanjiao-Content-Id']}") as cr:
        assert (await cr.json())["original_filename"] == "evil.mp4"
    stored = [p.name for p in server.config.media_dir.rglob("*") if p.is_file()]
    assert all(len(n) == 64 for n in stored)  # only content hashes name files

"""tus 1.0.0 uploads: core + creation + checksum + termination on the real endpoint.

An upload streams to disk, survives a server restart (HEAD answers the stored offset),
and on completion becomes content only if ffprobe finds a playable video. Each bad
input gets its precise status and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path

import pytest

from tests import tusclient
from tests.conftest import Server, serve, server_config

pytestmark = pytest.mark.asyncio


def _parts(server: Server) -> list[Path]:
    return sorted(server.config.uploads_dir.glob("*.part"))


def _stored(server: Server) -> list[Path]:
    return sorted(p for p in server.config.media_dir.rglob("*") if p.is_file())


async def test_options_advertises_extensions(server: Server) -> None:
    async with server.http.options("/api/v1/uploads") as r:
        assert r.status == 204
        assert r.headers["Tus-Resumable"] == "1.0.0"
        assert r.headers["Tus-Version"] == "1.0.0"
        assert set(r.headers["Tus-Extension"].split(",")) == {"creation", "checksum", "termination"}
        assert set(r.headers["Tus-Checksum-Algorithm"].split(",")) == {"sha1", "sha256"}
        assert int(r.headers["Tus-Max-Size"]) == server.config.max_upload_bytes


async def test_upload_in_chunks_makes_content(server: Server, clip: Path) -> None:
    data = clip.read_bytes()
    r = await tusclient.upload(server.http, data, chunk=50_000, title="党课样片", kind="lecture",
                               filename="lesson.mp4", description="测试")
    assert r.status == 204
    assert r.headers["Upload-Offset"] == str(len(data))
    sha = hashlib.sha256(data).hexdigest()
    assert r.headers["Yuanjiao-Sha256"] == sha
    content_id = r.headers["Yuanjiao-Content-Id"]
    async with server.http.get(f"/api/v1/admin/contents/{content_id}") as cr:
        content = await cr.json()
    assert content["sha256"] == sha
    assert content["title"] == "党课样片"
    assert content["kind"] == "lecture"
    assert content["original_filename"] == "lesson.mp4"
    assert content["video_codec"] == "h264" and content["audio_codec"] == "aac"
    assert (content["width"], content["height"]) == (160, 120)
    assert 4.5 < content["duration_seconds"] < 5.5
    assert content["poster_sha256"] and content["poster_size"] > 0
    async with server.http.get(f"/blobs/{content['poster_sha256']}") as pr:
        assert (await pr.read())[:2] == b"\xff\xd8"  # a JPEG
    assert _parts(server) == []
    assert server.running.app  # the server is still up


async def test_sha1_checksum_accepted(server: Server, clip: Path) -> None:
    data = clip.read_bytes()
    created = await tusclient.create(server.http, len(data), title="t")
    r = await tusclient.patch(server.http, created.headers["Location"], 0, data, checksum="sha1")
    assert r.status == 204 and "Yuanjiao-Content-Id" in r.headers


async def test_same_bytes_twice_are_one_content(server: Server, clip: Path) -> None:
    data = clip.read_bytes()
    first = await tusclient.upload(server.http, data, title="一")
    second = await tusclient.upload(server.http, data, title="二")
    assert first.headers["Yuanjiao-Content-Id"] == second.headers["Yuanjiao-Content-Id"]
    async with server.http.get("/api/v1/admin/contents") as r:
        assert len(await r.json()) == 1
    videos = [p for p in _stored(server) if p.stat().st_size == len(data)]
    assert len(videos) == 1


async def test_cut_upload_resumes_after_restart(tmp_path: Path, clip: Path) -> None:
    data = clip.read_bytes()
    half = len(data) // 2
    config = server_config(tmp_path)
    async with serve(config) as (running, http):
        created = await tusclient.create(http, len(data), title="断点续传")
        location = created.headers["Location"]
        # Send the headers and half the body, then drop the connection.
        _reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(
            f"PATCH {location} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
            f"Authorization: {http.headers['Authorization']}\r\n"
            f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:half]
        )
        await writer.drain()
        # Wait until the server has taken in the half, then cut the link.
        for _ in range(200):
            part = config.uploads_dir / (location.rsplit("/", 1)[1] + ".part")
            if part.stat().st_size >= half:
                break
            await asyncio.sleep(0.02)
        writer.transport.abort()
        for _ in range(200):
            async with http.head(location, headers=tusclient.TUS) as r:
                if int(r.headers["Upload-Offset"]) > 0:
                    break
            await asyncio.sleep(0.02)
    async with serve(config) as (running, http):
        async with http.head(location, headers=tusclient.TUS) as r:
            assert r.status == 200
            offset = int(r.headers["Upload-Offset"])
            assert r.headers["Upload-Length"] == str(len(data))
            assert r.headers["Cache-Control"] == "no-store"
        assert 0 < offset <= half
        r2 = await tusclient.patch(http, location, offset, data[offset:], checksum="sha256")
        assert r2.status == 204
        assert r2.headers["Yuanjiao-Sha256"] == hashlib.sha256(data).hexdigest()


async def test_offset_mismatch_is_409(server: Server, clip: Path) -> None:
    data = clip.read_bytes()
    created = await tusclient.create(server.http, len(data), title="t")
    r = await tusclient.patch(server.http, created.headers["Location"], 10, data[10:100])
    assert r.status == 409
    async with server.http.head(created.headers["Location"], headers=tusclient.TUS) as h:
        assert h.headers["Upload-Offset"] == "0"


async def test_checksum_mismatch_is_460_and_discards_chunk(server: Server, clip: Path) -> None:
    data = clip.read_bytes()
    created = await tusclient.create(server.http, len(data), title="t")
    location = created.headers["Location"]
    ok = await tusclient.patch(server.http, location, 0, data[:1000], checksum="sha256")
    assert ok.headers["Upload-Offset"] == "1000"
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    async with server.http.patch(location, data=data[1000:2000], headers={
        **tusclient.TUS, "Upload-Offset": "1000", "Content-Type": "application/offset+octet-stream",
        "Upload-Checksum": f"sha256 {wrong}",
    }) as r:
        assert r.status == 460
        assert (await r.json())["error"]["code"] == "checksum_mismatch"
    async with server.http.head(location, headers=tusclient.TUS) as h:
        assert h.headers["Upload-Offset"] == "1000"
    # The upload carries on and the final hash is right: the bad chunk left no trace.
    rest = await tusclient.patch(server.http, location, 1000, data[1000:], checksum="sha1")
    assert rest.headers["Yuanjiao-Sha256"] == hashlib.sha256(data).hexdigest()


async def test_too_large_is_413(tmp_path: Path) -> None:
    async with serve(server_config(tmp_path, max_upload_bytes=1000)) as (running, http):
        r = await tusclient.create(http, 1001, title="big")
        assert r.status == 413
        assert r.headers["Tus-Resumable"] == "1.0.0"
        assert list(running.config.uploads_dir.glob("*")) == []


async def test_disk_would_fill_is_507(tmp_path: Path) -> None:
    config = server_config(tmp_path, min_free_bytes=1 << 60)
    async with serve(config) as (_running, http):
        r = await tusclient.create(http, 5000, title="film")
        assert r.status == 507
        async with http.get("/api/v1/server") as alive:
            assert alive.status == 200
        assert list(config.uploads_dir.glob("*")) == []


@pytest.mark.parametrize(("body", "reason"), [
    (b"MZ" + bytes(range(256)) * 40, "not a readable video"),
    ("这不是视频，是一个文本文件。\n".encode() * 100, "not a readable video"),
])
async def test_non_video_is_422_and_nothing_stored(server: Server, body: bytes, reason: str) -> None:
    r = await tusclient.upload(server.http, body, title="假视频", filename="film.mp4")
    assert r.status == 422
    assert reason in (await r.json())["error"]["message_en"]
    async with server.http.get("/api/v1/admin/contents") as cr:
        assert await cr.json() == []
    assert _parts(server) == []
    assert _stored(server) == []


async def test_audio_only_is_422(server: Server, tmp_path: Path) -> None:
    import subprocess
    audio = tmp_path / "a.mp4"
    await asyncio.to_thread(
        subprocess.run, ["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "sine", "-t", "2",
                         "-c:a", "aac", str(audio)], check=True)
    r = await tusclient.upload(server.http, audio.read_bytes(), title="audio")
    assert r.status == 422
    assert "no video stream" in (await r.json())["error"]["message_en"]


async def test_truncated_mp4_is_422(server: Server, clip: Path) -> None:
    r = await tusclient.upload(server.http, clip.read_bytes()[:3000], title="cut")
    assert r.status == 422
    assert _stored(server) == []


async def test_termination(server: Server, clip: Path) -> None:
    data = clip.read_bytes()
    created = await tusclient.create(server.http, len(data), title="t")
    location = created.headers["Location"]
    await tusclient.patch(server.http, location, 0, data[:500])
    async with server.http.delete(location, headers=tusclient.TUS) as r:
        assert r.status == 204
    async with server.http.head(location, headers=tusclient.TUS) as r:
        assert r.status == 404
    assert _parts(server) == []


async def test_wrong_version_is_412(server: Server) -> None:
    async with server.http.post("/api/v1/uploads", headers={
        "Tus-Resumable": "0.2.2", "Upload-Length": "10"}) as r:
        assert r.status == 412
        assert r.headers["Tus-Version"] == "1.0.0"


async def test_patch_needs_offset_content_type(server: Server) -> None:
    created = await tusclient.create(server.http, 100, title="t")
    async with server.http.patch(created.headers["Location"], data=b"x", headers={
        **tusclient.TUS, "Upload-Offset": "0", "Content-Type": "application/json"}) as r:
        assert r.status == 415


@pytest.mark.parametrize("headers", [
    {"Upload-Length": "-1"},
    {"Upload-Length": "abc"},
    {},
    {"Upload-Length": "0"},
    {"Upload-Length": "10", "Upload-Metadata": "title"},
    {"Upload-Length": "10", "Upload-Metadata": "title not*base64"},
    {"Upload-Length": "10", "Upload-Metadata": "title dA==,title dA=="},
    {"Upload-Length": "10", "Upload-Metadata": tusclient.metadata(title="t", kind="cartoon")},
    {"Upload-Length": "10", "Upload-Metadata": tusclient.metadata(filename="a\x00b.mp4")},
    {"Upload-Length": "10", "Upload-Metadata": tusclient.metadata(filename="x" * 5000)},
])
async def test_malformed_creation_is_400(server: Server, headers: dict[str, str]) -> None:
    async with server.http.post("/api/v1/uploads", headers={**tusclient.TUS, **headers}) as r:
        assert r.status == 400
        body = await r.json()
        assert body["error"]["message"]
    assert _parts(server) == []


async def test_path_in_filename_is_display_text_only(server: Server, clip: Path) -> None:
    r = await tusclient.upload(server.http, clip.read_bytes(), filename="../../etc/passwd.mp4",
                               title="x")
    async with server.http.get(f"/api/v1/admin/contents/{r.headers['Yuanjiao-Content-Id']}") as cr:
        assert (await cr.json())["original_filename"] == "passwd.mp4"
    assert not (server.config.data_dir.parent / "etc").exists()


async def test_unknown_upload_is_404(server: Server) -> None:
    async with server.http.head("/api/v1/uploads/nope", headers=tusclient.TUS) as r:
        assert r.status == 404
        assert r.headers["Tus-Resumable"] == "1.0.0"


async def test_expired_upload_is_410_then_swept(tmp_path: Path) -> None:
    config = server_config(tmp_path, upload_expiry_hours=-1.0)  # expired the moment it is made
    async with serve(config) as (running, http):
        created = await tusclient.create(http, 1000, title="过期")
        location = created.headers["Location"]
        async with http.head(location, headers=tusclient.TUS) as r:
            assert r.status == 410
        from server.appkeys import UPLOADS
        assert await running.app[UPLOADS].remove_expired() == 1
        assert list(config.uploads_dir.glob("*.part")) == []
        async with http.head(location, headers=tusclient.TUS) as r:
            assert r.status == 404

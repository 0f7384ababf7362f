"""A full data disk on the server. Runs on a small tmpfs the test mounts itself.

Contract:
* an upload larger than the free space gets 507 at creation, and nothing is left behind;
* an upload whose PATCH meets a full disk gets 507 and is kept, cut back to the end of
  the bytes that were really written; HEAD answers that offset, and once space is free a
  PATCH from it completes the upload with the right sha256;
* heartbeats and attendance on a full disk get 507 with Retry-After in the one error
  shape (before the database is touched, or when SQLite itself meets the full disk),
  logged once and then counted, nothing stored before is harmed, and they work again
  once space is free;
* the fleet summary says `server_disk_full` and gives `server_free_bytes`;
* expired partial uploads and stray `.part` files are removed by the stated rule.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from sqlalchemy import text

from server.appkeys import DB, UPLOADS
from server.diskspace import ROOMY_BYTES, ROOMY_SECONDS, DiskWatch
from server.runner import RunningServer
from tests import tusclient
from tests.conftest import TEST_DATABASE, serve, server_config, terminal_session, terminal_token

pytestmark = pytest.mark.asyncio
DISK = 4 << 20
BIG_DISK = 24 << 20
T1 = "T140121100001"


def _mount(path: Path, size: int) -> None:
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.decode().strip()}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    _mount(mount, DISK)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    _mount(mount, BIG_DISK)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, name: str) -> int:
    """Write a ballast file until the disk refuses; returns its size (blocking)."""
    written, block = 0, b"\0" * 65536
    fd = os.open(disk / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            try:
                n = os.write(fd, block)
            except OSError:
                block = block[: len(block) // 2]
                if len(block) < 512:
                    return written
                continue
            written += n
    finally:
        os.close(fd)


def free(disk: Path) -> int:
    st = os.statvfs(disk)
    return st.f_bavail * st.f_frsize


def heartbeat() -> dict[str, Any]:
    return {"software_version": "0.1.0", "terminal_clock": datetime.now(UTC).isoformat(),
            "disk_free": 1 << 30, "disk_total": 2 << 30, "cache": [], "outbox_backlog": 0,
            "catalog_version": 1}


def batch(n: int = 1) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(hours=1)
    return {"terminal_clock": datetime.now(UTC).isoformat(), "records": [
        {"record_id": os.urandom(8).hex(), "seq": i + 1, "started_at": start.isoformat(),
         "ended_at": (start + timedelta(minutes=30)).isoformat(),
         "items": [{"sha256": "a" * 64, "watched_seconds": 1500.0}], "attendees": [],
         "title": "冬训"} for i in range(n)]}


async def attendance_count(running: RunningServer) -> int:
    return int(await running.app[DB].read(
        lambda c: c.execute(text("SELECT COUNT(*) FROM attendance")).scalar_one()))


async def fleet(http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.get("/api/v1/admin/fleet") as r:
        assert r.status == 200, await r.text()
        return dict(await r.json())


async def assert_refused(terminal: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> None:
    async with terminal.post(path, json=body) as r:
        payload = await r.json()
        assert r.status == 507, payload
        assert set(payload) == {"error"} and payload["error"]["code"] == "insufficient_storage"
        assert "磁盘已满" in payload["error"]["message"] and "disk is full" in payload["error"]["message_en"]
        assert int(r.headers["Retry-After"]) > 0


async def test_creation_larger_than_free_space_is_507(small_disk: Path) -> None:
    config = server_config(small_disk, data_dir=small_disk / "data", write_reserve_bytes=0)
    async with serve(config) as (_running, http):
        r = await tusclient.create(http, DISK * 2, title="大片")
        assert r.status == 507
        async with http.post("/api/v1/uploads", headers={
                **tusclient.TUS, "Upload-Length": str(DISK * 2),
                "Upload-Metadata": tusclient.metadata(title="大片")}) as r2:
            body = await r2.json()
        assert r2.status == 507 and body["error"]["code"] == "insufficient_storage"
        assert list(config.uploads_dir.iterdir()) == []


async def _wait_for(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_full_disk_keeps_upload_refuses_terminals_then_resumes(disk: Path, clip: Path) -> None:
    config = server_config(disk, data_dir=disk / "data", write_reserve_bytes=0)
    async with serve(config, seed=True) as (running, http):
        stored = await tusclient.upload(http, clip.read_bytes(), title="已有内容")
        assert stored.status == 204
        stored_sha = stored.headers["Yuanjiao-Sha256"]
        token = await terminal_token(http, T1)
        async with terminal_session(running, token) as terminal:
            async with terminal.post(f"/api/v1/terminals/{T1}/attendance", json=batch(3)) as r:
                assert r.status == 200
            before = await attendance_count(running)

            # A real video padded to most of the free space, sent in one PATCH.
            size = int(free(disk) * 0.6)
            payload = clip.read_bytes() + os.urandom(size - clip.stat().st_size)
            created = await tusclient.create(http, size, title="冬季培训")
            assert created.status == 201
            location = created.headers["Location"]
            part = config.uploads_dir / (location.rsplit("/", 1)[1] + ".part")
            first = 3 << 20

            async def body() -> AsyncIterator[bytes]:
                yield payload[:first]
                # Once whole blocks are on disk, something else fills the disk.
                await _wait_for(lambda: part.stat().st_size >= 2 << 20, "the first blocks")
                await asyncio.to_thread(fill, disk, "ballast")
                for i in range(first, size, 1 << 20):
                    yield payload[i:i + (1 << 20)]

            async with http.patch(location, data=body(), headers={
                    **tusclient.TUS, "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream"}) as r:
                err = await r.json()
                assert r.status == 507, err
                kept = int(r.headers["Upload-Offset"])
            assert err["error"]["code"] == "insufficient_storage"
            assert err["error"]["details"] == {"offset": kept}
            assert 1 << 20 <= kept < size  # the whole blocks, less at most one given back
            async with http.head(location, headers=tusclient.TUS) as h:
                assert h.status == 200 and int(h.headers["Upload-Offset"]) == kept
            assert part.stat().st_size == kept
            assert part.read_bytes() == payload[:kept]

            # The cut-back freed the unfinished block; take that space too.
            await asyncio.to_thread(fill, disk, "ballast2")
            status = await fleet(http)
            assert status["server_disk_full"] is True and status["server_free_bytes"] < 65536
            await assert_refused(terminal, f"/api/v1/terminals/{T1}/heartbeat", heartbeat())
            await assert_refused(terminal, f"/api/v1/terminals/{T1}/attendance", batch(2))
            # A second PATCH before space is freed is refused up front, the upload still kept.
            r2 = await tusclient.patch(http, location, kept, payload[kept:])
            assert r2.status == 507 and int(r2.headers["Upload-Offset"]) == kept

            # Nothing stored before was harmed.
            assert await attendance_count(running) == before
            async with http.get(f"/blobs/{stored_sha}") as b:
                assert b.status == 200 and await b.read() == clip.read_bytes()

            # Space comes back: terminals are answered again and the upload resumes.
            (disk / "ballast").unlink()
            (disk / "ballast2").unlink()
            status = await fleet(http)
            assert status["server_disk_full"] is False and status["server_free_bytes"] > size
            async with terminal.post(f"/api/v1/terminals/{T1}/heartbeat", json=heartbeat()) as r:
                assert r.status == 200
            async with terminal.post(f"/api/v1/terminals/{T1}/attendance", json=batch(2)) as r:
                assert r.status == 200
            assert await attendance_count(running) == before + 2
            done = await tusclient.patch(http, location, kept, payload[kept:])
            assert done.status == 204, done.status
            assert done.headers["Yuanjiao-Sha256"] == hashlib.sha256(payload).hexdigest()
        if TEST_DATABASE == "sqlite":
            check = await running.app[DB].read(
                lambda c: c.execute(text("PRAGMA integrity_check")).scalar_one())
            assert check == "ok"


def _checkpoint(db: Path) -> None:
    with sqlite3.connect(db) as c:
        busy, _, _ = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0


@pytest.mark.skipif(TEST_DATABASE != "sqlite",
                    reason="the PostgreSQL cluster keeps its files off the server's data disk")
async def test_sqlite_meeting_a_full_disk_is_507_not_500(
        disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    # No reserve at all: the database itself runs into the full disk.
    config = server_config(disk, data_dir=disk / "data", write_reserve_bytes=-1)
    async with serve(config, seed=True) as (running, http):
        token = await terminal_token(http, T1)
        async with terminal_session(running, token) as terminal:
            async with terminal.post(f"/api/v1/terminals/{T1}/attendance", json=batch(3)) as r:
                assert r.status == 200
            before = await attendance_count(running)
            await asyncio.to_thread(_checkpoint, config.db_path)  # the WAL must grow to write
            await asyncio.to_thread(fill, disk, "ballast")
            caplog.clear()
            for _ in range(10):
                await assert_refused(terminal, f"/api/v1/terminals/{T1}/heartbeat", heartbeat())
            await assert_refused(terminal, f"/api/v1/terminals/{T1}/attendance", batch(50))
            # Logged once per kind (the failed commit, the refused write), then counted.
            logged = [r for r in caplog.records if r.name.startswith(("server", "shared"))]
            assert len(logged) <= 2, [r.getMessage() for r in logged]
            assert (await fleet(http))["server_disk_full"] is True
            assert await attendance_count(running) == before
            (disk / "ballast").unlink()
            async with terminal.post(f"/api/v1/terminals/{T1}/attendance", json=batch(50)) as r:
                assert r.status == 200
            assert await attendance_count(running) == before + 50


async def test_expired_and_stray_partial_uploads_are_removed(tmp_path: Path) -> None:
    config = server_config(tmp_path, upload_expiry_hours=1.0)
    async with serve(config) as (running, http):
        created = await tusclient.create(http, 1000, title="半截")
        location = created.headers["Location"]
        upload_id = location.rsplit("/", 1)[1]
        assert (await tusclient.patch(http, location, 0, b"x" * 400)).status == 204
        stray = config.uploads_dir / "0123456789abcdef.part"
        stray.write_bytes(b"left by a crash")
        young = config.uploads_dir / "fedcba9876543210.part"
        young.write_bytes(b"being created right now")
        two_hours_ago = time.time() - 7200
        os.utime(stray, (two_hours_ago, two_hours_ago))
        manager = running.app[UPLOADS]
        assert await manager.remove_expired() == 1  # the stray only: the upload is young
        assert not stray.exists() and young.exists()
        past = "2000-01-01T00:00:00.000000Z"
        await running.app[DB].write(lambda c: c.execute(
            text("UPDATE uploads SET expires_at = :past WHERE id = :id"),
            {"past": past, "id": upload_id}))
        assert await manager.remove_expired() == 1
        assert not (config.uploads_dir / f"{upload_id}.part").exists()
        async with http.head(location, headers=tusclient.TUS) as h:
            assert h.status == 404


async def test_a_roomy_disk_is_looked_at_once_a_second(tmp_path: Path) -> None:
    """Far above the reserve a statvfs reading serves the terminal writes of one second;
    near it, every terminal write looks again."""
    free = shutil.disk_usage(tmp_path).free
    if free < 3 * ROOMY_BYTES:
        pytest.skip("the test disk has too little room to be called roomy")
    now = [0.0]

    class Counting(DiskWatch):
        looks = 0

        def _free(self) -> int:
            Counting.looks += 1
            return super()._free()

    beat = make_mocked_request("POST", f"/api/v1/terminals/{T1}/heartbeat")
    roomy = Counting(tmp_path, reserve_bytes=0, clock=lambda: now[0])
    for _ in range(50):
        await roomy.check_terminal_write(beat)
    assert Counting.looks == 1
    now[0] += ROOMY_SECONDS
    await roomy.check_terminal_write(beat)
    assert Counting.looks == 2

    Counting.looks = 0
    near = Counting(tmp_path, reserve_bytes=free - ROOMY_BYTES // 2, clock=lambda: now[0])
    for _ in range(5):
        await near.check_terminal_write(beat)
    assert Counting.looks == 5

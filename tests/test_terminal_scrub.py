"""The scrub hashes cached files again in the background, and nothing unverified is "ready".

* A byte flipped in a cached file with its modification time put back (so no stat can
  tell) is caught by the scheduled scrub, with no session asking for the file: the
  terminal's status and the county's fleet view stop calling it ready, it is fetched
  again as soon as downloads may run, and it is ready again.
* A file not hashed for longer than the scrub interval is "verifying" in the status and
  the fleet view (the server takes the state and does not count the item as ready); the
  scrub does not read while a session plays, and verifies the file once the session ends.
* In idle time a file is hashed again ahead of its deadline (from 3/4 of the interval),
  so it stays "ready" all along.
* A scheduled session's items are hashed again `session_verify_lead` before it starts, so
  a damaged one is fetched again before the session, which then plays it.
* `yuanjiao-terminal status` with the daemon stopped reads the database and still calls a
  file not hashed within the interval "verifying".
* The scrub's reading is paced to its rate cap, and a background hash stops between two
  reads when asked, leaving the item's state as it was.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server.runner import RunningServer
from shared.hashing import sha256_file
from shared.protocol import CatalogItem, ContentKind
from shared.sqlite import Database
from shared.timeutil import to_db, utcnow
from terminal.daemon import Terminal
from terminal.errors import VerifyInterrupted
from terminal.playback.player import Player
from terminal.playback.sessions import SessionSpec
from terminal.storage import db as q
from terminal.storage.cache import Cache
from terminal.storage.migrations import MIGRATIONS
from tests.conftest import Server, add_account, admin_session, seed_county, server_config
from tests.terminal_helpers import REPO, VILLAGE, assign, enroll, item_state, terminal_config, upload

pytestmark = pytest.mark.asyncio

HEARTBEAT = 0.3


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """The real server, telling terminals to heartbeat every 0.3 s so the fleet view follows."""
    async with RunningServer(server_config(tmp_path, heartbeat_interval=HEARTBEAT)) as running:
        await seed_county(running)
        token = await add_account(running)
        async with admin_session(running, token) as http:
            yield Server(running, http)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _flip_keeping_mtime(path: Path, offset: int) -> None:
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _closed_window() -> str:
    """A download window that is not open for the next two hours, county time."""
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    return f"{now + timedelta(hours=2):%H:%M}-{now + timedelta(hours=3):%H:%M}"


async def _fleet_entry(server: Server) -> dict[str, Any]:
    async with server.http.get("/api/v1/admin/fleet") as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    terminals = body["terminals"] if isinstance(body, dict) else body
    entry: dict[str, Any] = next(t for t in terminals if t["id"] == f"T{VILLAGE}")
    return entry


async def _fleet_ready(server: Server, ready: int) -> bool:
    entry = await _fleet_entry(server)
    return bool(entry["last_seen"]) and entry["ready_items"] == ready


async def _wait_server(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "the server's view did not follow in time"
        await asyncio.sleep(HEARTBEAT / 2)


async def test_flip_behind_an_unchanged_mtime_is_caught_by_the_scrub(
    tmp_path: Path, server: Server, clip: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    content_id, sha = await upload(server.http, clip, "党课")
    await assign(server.http, content_id)
    config = await enroll(server.http, terminal_config(
        tmp_path, server.url, download_window=_closed_window(), heartbeat_interval=HEARTBEAT,
        scrub_interval=1.0, scrub_poll_seconds=0.2, scrub_rate_limit=50_000_000,
    ), server.url)
    async with Terminal(config) as terminal:
        await terminal.control("window", {"hours": 1})  # the site manager opens the window
        await terminal.wait_until(item_state(terminal, sha), timeout=30)
        await _wait_server(lambda: _fleet_ready(server, 1), 30)
        await terminal.control("window", {"hours": 0})  # closed again: no refetch for now

        cached = config.cache_dir / sha
        with caplog.at_level(logging.ERROR, logger="terminal.storage.cache"):
            await asyncio.to_thread(_flip_keeping_mtime, cached, 1500)
            # nothing asks for the file: only the scrub's schedule can find it
            await terminal.wait_until(item_state(terminal, sha, "corrupt"), timeout=30)
        assert any("is corrupt" in r.message for r in caplog.records)
        assert terminal.scrubber.found_bad == 1
        assert not cached.exists()
        await _wait_server(lambda: _fleet_ready(server, 0), 30)

        await terminal.control("window", {"hours": 1})
        await terminal.wait_until(item_state(terminal, sha), timeout=30)
        assert await asyncio.to_thread(sha256_file, cached) == sha
        await _wait_server(lambda: _fleet_ready(server, 1), 30)


async def test_overdue_file_is_verifying_and_waits_for_the_session_to_end(
    tmp_path: Path, server: Server, clip: Path, clip2: Path,
) -> None:
    id1, played = await upload(server.http, clip, "党课")
    id2, other = await upload(server.http, clip2, "农技")
    await assign(server.http, id1)
    await assign(server.http, id2)
    config = await enroll(server.http, terminal_config(
        tmp_path, server.url, heartbeat_interval=HEARTBEAT, playback_rate=1.0,
        scrub_interval=1.5, scrub_poll_seconds=0.1, scrub_rate_limit=50_000_000,
    ), server.url)
    async with Player(headless=True, rate=1.0) as player, Terminal(config, player=player) as terminal:
        for sha in (played, other):
            await terminal.wait_until(item_state(terminal, sha), timeout=30)
        task = await terminal.start_session(SessionSpec("冬训", [played]), ["1"])
        # during the session the other file falls due: no longer ready, not read either
        await terminal.wait_until(item_state(terminal, other, "verifying"), timeout=10)
        assert not task.done(), "the clip must still be playing"
        checked = terminal.scrubber.checked
        await _wait_server(lambda: _fleet_ready(server, 0), 10)
        result = await task
        assert result.watched[played] > 4 and not result.skipped
        assert terminal.scrubber.checked == checked, "the scrub read during the session"

        # the session over, the scrub hashes both again and they are ready
        for sha in (played, other):
            await terminal.wait_until(item_state(terminal, sha), timeout=10)
        assert terminal.scrubber.checked > checked
        await _wait_server(lambda: _fleet_ready(server, 2), 10)


async def test_idle_time_hashes_a_file_before_it_falls_due(
    tmp_path: Path, server: Server, clip: Path,
) -> None:
    content_id, sha = await upload(server.http, clip, "党课")
    await assign(server.http, content_id)
    config = await enroll(server.http, terminal_config(
        tmp_path, server.url, scrub_interval=2.0, scrub_poll_seconds=5.0, scrub_rate_limit=50_000_000,
    ), server.url)  # the poll is longer than the interval: only the scrub's own timing acts
    seen: set[str] = set()
    async with Terminal(config) as terminal:
        await terminal.wait_until(item_state(terminal, sha), timeout=30)

        async def checked_twice() -> bool:
            seen.update(i.state for i in (await terminal.snapshot()).items)
            return terminal.scrubber.checked >= 2

        await terminal.wait_until(checked_twice, timeout=15)
        row = await terminal.db.read(lambda c: q.item(c, sha))
    assert row is not None and row.state == "ready"
    assert "verifying" not in seen, "the file fell due before idle time hashed it"


async def test_a_scheduled_sessions_items_are_verified_before_it(
    tmp_path: Path, server: Server, clip: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    content_id, sha = await upload(server.http, clip, "党课")
    await assign(server.http, content_id)
    config = await enroll(server.http, terminal_config(
        tmp_path, server.url, auto_start_sessions=False, sync_interval=0.5,
        session_verify_lead=5.0, scrub_poll_seconds=0.2, scrub_rate_limit=50_000_000,
    ), server.url)  # the scrub interval stays 7 days: only the session's lead can find it
    async with Player(headless=True, rate=8.0) as player, Terminal(config, player=player) as terminal:
        await terminal.wait_until(item_state(terminal, sha), timeout=30)
        cached = config.cache_dir / sha
        await asyncio.to_thread(_flip_keeping_mtime, cached, 700)

        starts = utcnow() + timedelta(seconds=10)
        async with server.http.post("/api/v1/admin/sessions", json={
            "title": "冬训第一课", "starts_at": to_db(starts).replace(".000000", ""),
            "content_ids": [content_id], "village_codes": [VILLAGE],
        }) as r:
            assert r.status == 201, await r.text()
            session_id = (await r.json())["id"]

        with caplog.at_level(logging.ERROR, logger="terminal.storage.cache"):
            await terminal.wait_until(lambda: any("is corrupt" in r.message for r in caplog.records), 30)
        caught = utcnow()
        ready = item_state(terminal, sha)

        async def fetched_again() -> bool:
            # The corruption is logged before the file goes and the state changes: "ready"
            # alone may still be the state from before.
            return await ready() and cached.exists() and \
                await asyncio.to_thread(sha256_file, cached) == sha

        await terminal.wait_until(fetched_again, timeout=30)
        assert utcnow() < starts, "fetched again before the session"
        assert caught >= starts - timedelta(seconds=5.5), "caught by the lead check, not earlier"
        assert await asyncio.to_thread(sha256_file, cached) == sha

        result = await terminal.run_session(terminal.session_for(session_id), ["1"])
        assert player.played == [sha] and not result.skipped


async def test_status_without_the_daemon_shows_an_overdue_file_as_verifying(
    tmp_path: Path, server: Server, clip: Path,
) -> None:
    content_id, sha = await upload(server.http, clip, "党课")
    await assign(server.http, content_id)
    config = await enroll(server.http, terminal_config(tmp_path, server.url), server.url)
    async with Terminal(config) as terminal:
        await terminal.wait_until(item_state(terminal, sha), timeout=30)

    async def status(interval: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "terminal", "status", "--json", "--data-dir", str(config.data_dir),
            "--terminal-id", config.terminal_id, "--status-port", str(free_port()),
            env={**os.environ, "YUANJIAO_TERMINAL_SCRUB_INTERVAL": interval}, cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        snap = json.loads(out)
        assert snap["condition"] == "daemon not running"
        return str(next(i["state"] for i in snap["items"] if i["sha256"] == sha))

    assert await status("3600") == "ready"
    await asyncio.sleep(0.1)  # the file's check is now older than the interval below
    assert await status("0.05") == "verifying"


async def test_the_scrub_is_paced_and_stops_between_reads(tmp_path: Path) -> None:
    size = 3 << 20
    data = os.urandom(size)
    sha = hashlib.sha256(data).hexdigest()
    root = tmp_path / "cache"
    async with Database(tmp_path / "t.sqlite3", MIGRATIONS) as database:
        cache = Cache(database, root, quota=1 << 30, min_free_bytes=0, clean_marker=tmp_path / "clean")
        await cache.async_open()
        await asyncio.to_thread(cache.path(sha).write_bytes, data)
        item = CatalogItem(sha256=sha, size=size, content_id="c1", title="t", kind=ContentKind.LECTURE,
                           duration_seconds=5.0)
        await database.write(lambda c: q.apply_catalog_items(c, [item]))
        await cache.mark_ready(sha, size)

        t0 = time.monotonic()
        await cache.verify(sha, rate=6 << 20, stop=lambda: False)
        took = time.monotonic() - t0
        assert took >= 0.45, f"3 MiB at 6 MiB/s took {took:.2f} s"

        began = time.monotonic()  # a session begins 0.2 s into a hash that would take 3 s
        with pytest.raises(VerifyInterrupted):
            await cache.verify(sha, rate=1 << 20, stop=lambda: time.monotonic() - began > 0.2)
        assert time.monotonic() - began < 1.0
        row = await database.read(lambda c: q.item(c, sha))
        assert row is not None and row.state == "ready"
        await cache.async_close()

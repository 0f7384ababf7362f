"""End to end on one machine, all real: a county server advertising itself over mDNS
on loopback; a terminal with no configured URL that finds it, pins its key, fetches
its signed catalog, downloads and verifies two uploaded clips, plays them as one
session with libvlc (headless, at 8x) for two signed-in members, and delivers the
attendance record; the server's member reports show both members with the clips'
watched seconds, and its fleet view lists the terminal as discovered over mDNS."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from shared.hashing import sha256_file
from terminal.daemon import Terminal
from terminal.playback.sessions import SessionSpec
from tests.conftest import serve, server_config
from tests.terminal_helpers import (
    TERMINAL_ID,
    assign,
    backlog_empty,
    enroll,
    eventually,
    import_roster,
    item_state,
    member_record,
    terminal_config,
    upload,
)

pytestmark = pytest.mark.asyncio
CLIP_SECONDS = 5.0
CLIP2_SECONDS = 4.0


async def test_discover_download_play_attend_report(tmp_path: Path, clip: Path, clip2: Path) -> None:
    config = server_config(tmp_path, zeroconf=True, zeroconf_interfaces=("127.0.0.1",))
    async with serve(config, seed=True) as (running, http):
        content_id, sha = await upload(http, clip, "党课：基层治理")
        await assign(http, content_id)
        content2, sha2 = await upload(http, clip2, "农业实用技术：果树")
        await assign(http, content2)
        await import_roster(http)

        tconfig = terminal_config(tmp_path, server_url="", zeroconf=True)
        # The site manager enters the county's code; the address is then forgotten, so the
        # terminal must find the server over mDNS.
        await enroll(http, tconfig, running.url, keep_address=False)
        async with Terminal(tconfig) as terminal:
            await terminal.wait_until(item_state(terminal, sha), timeout=60)
            await terminal.wait_until(item_state(terminal, sha2), timeout=60)
            snap = await terminal.snapshot()
            assert snap.server_url == running.url  # found over mDNS: nothing was configured
            path = tconfig.cache_dir / sha
            assert await _hash(path) == sha

            result = await terminal.run_session(SessionSpec("冬训第一课", [sha, sha2]), ["1", "李娜"])
            assert result.attendees == ["1", "2"]
            assert result.watched[sha] == pytest.approx(CLIP_SECONDS, abs=0.5)
            assert result.watched[sha2] == pytest.approx(CLIP2_SECONDS, abs=0.5)
            assert not result.skipped

            await terminal.wait_until(backlog_empty(terminal), timeout=30)

            for member_no in ("1", "2"):
                record = await member_record(http, member_no)
                assert record["sessions"] == 1
                assert record["watched_seconds"] == pytest.approx(CLIP_SECONDS + CLIP2_SECONDS, abs=0.8)
                assert record["entries"][0]["terminal_id"] == TERMINAL_ID

            async def discovered() -> bool:
                async with http.get("/api/v1/admin/fleet") as r:
                    fleet: dict[str, Any] = await r.json()
                return any(t["id"] == TERMINAL_ID and t["discovered"] for t in fleet["terminals"])

            await eventually(discovered, timeout=20)


async def _hash(path: Path) -> str:
    return await asyncio.to_thread(sha256_file, path)

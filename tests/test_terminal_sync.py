"""Sync order and the download window.

* Items needed sooner are fetched first, whatever order they were assigned in.
* Outside the download window nothing is fetched and the status says why; the site
  manager's override opens the window and the download starts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.timeutil import utcnow
from terminal.daemon import Terminal
from tests.conftest import Server
from tests.terminal_helpers import assign, enroll, item_state, terminal_config, upload

pytestmark = pytest.mark.asyncio


async def test_needed_sooner_first(
    tmp_path: Path, server: Server, clip: Path, clip2: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    later_id, later = await upload(server.http, clip, "年底再看")
    soon_id, soon = await upload(server.http, clip2, "明天就要")
    await assign(server.http, later_id, needed_by=(utcnow() + timedelta(days=30)).isoformat())
    await assign(server.http, soon_id, needed_by=(utcnow() + timedelta(days=1)).isoformat())
    with caplog.at_level(logging.INFO, logger="terminal.storage.sync"):
        tconfig = await enroll(server.http, terminal_config(tmp_path, server.url), server.url)
        async with Terminal(tconfig) as terminal:
            await terminal.wait_until(item_state(terminal, later), timeout=30)
    order = [r.message.split()[1] for r in caplog.records if r.message.startswith("ready:")]
    assert order == [soon[:12], later[:12]]


async def test_window_closed_until_the_manager_opens_it(tmp_path: Path, server: Server, clip: Path) -> None:
    content_id, sha = await upload(server.http, clip, "夜里下载")
    await assign(server.http, content_id)
    local = datetime.now(ZoneInfo("Asia/Shanghai"))
    window = f"{(local + timedelta(hours=2)):%H:%M}-{(local + timedelta(hours=3)):%H:%M}"
    tconfig = await enroll(server.http, terminal_config(tmp_path, server.url, download_window=window),
                           server.url)
    async with Terminal(tconfig) as terminal:
        async def waiting() -> bool:
            snap = await terminal.snapshot()
            return snap.condition.startswith("waiting for the download window") and not snap.window_open
        await terminal.wait_until(waiting, timeout=30)
        assert not (terminal.config.cache_dir / sha).exists()

        answer = await terminal.control("window", {"hours": 1})
        assert "window_open_until" in answer
        await terminal.wait_until(item_state(terminal, sha), timeout=30)
        assert (await terminal.snapshot()).window_open

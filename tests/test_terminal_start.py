"""Starting a session says what really happened.

* An item named by nothing on the terminal, or by a title two items share, is an error
  with a message (control and CLI); nothing starts and no record is written.
* A unique sha256 prefix names its item; the start (control and CLI) answers "started"
  only once the player is playing (or "played" when it is already over).
* An item that never plays (its cached bytes are corrupt) is an error, "nothing
  played"; its record holds no watched time and counts in no report.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from terminal.daemon import Terminal
from terminal.storage import db as q
from tests.conftest import serve, server_config
from tests.terminal_helpers import (
    REPO,
    TERMINAL_ID,
    assign,
    backlog_empty,
    enroll,
    import_roster,
    item_state,
    member_record,
    terminal_config,
    upload,
)

pytestmark = pytest.mark.asyncio


async def test_start_names_items_exactly_and_says_what_played(
    tmp_path: Path, clip: Path, clip2: Path,
) -> None:
    async with serve(server_config(tmp_path), seed=True) as (running, http):
        content, sha = await upload(http, clip, "党课")
        await assign(http, content)
        content2, sha2 = await upload(http, clip2, "党课")  # the same title twice
        await assign(http, content2)
        await import_roster(http)
        tconfig = await enroll(http, terminal_config(tmp_path, running.url), running.url)
        async with Terminal(tconfig) as terminal:
            await terminal.wait_until(item_state(terminal, sha), timeout=30)
            await terminal.wait_until(item_state(terminal, sha2), timeout=30)
            counts = await terminal.db.read(q.record_counts)

            with pytest.raises(ValueError, match="no item 'nope'"):
                await terminal.control("start", {"items": ["nope"], "attendees": ["1"]})
            with pytest.raises(ValueError, match="several items"):
                await terminal.control("start", {"items": ["党课"], "attendees": ["1"]})
            assert await terminal.db.read(q.record_counts) == counts  # nothing was started

            assert terminal.status_server is not None
            cli = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "terminal", "session", "--data-dir", str(tconfig.data_dir),
                "--terminal-id", TERMINAL_ID, "--status-port", str(terminal.status_server.port),
                "--item", "党课", "--member", "1", cwd=REPO,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            out, err = await cli.communicate()
            assert cli.returncode != 0
            assert "started" not in out.decode() and "several items" in err.decode()

            answer = await terminal.control("start", {"items": [sha[:10]], "attendees": ["1"]})
            assert answer["state"] in ("playing", "played")  # never "starting" here
            assert terminal._session_task is not None
            played = await terminal._session_task
            assert played.watched[sha] > 0

            cli = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "terminal", "session", "--data-dir", str(tconfig.data_dir),
                "--terminal-id", TERMINAL_ID, "--status-port", str(terminal.status_server.port),
                "--item", sha, "--member", "1", cwd=REPO,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            out, err = await cli.communicate()
            assert cli.returncode == 0, err.decode()
            assert "it is playing" in out.decode() or "played" in out.decode()
            await terminal.wait_until(lambda: not terminal.session_running, timeout=30)

            # corrupt bytes of the same length: listed as ready, but never plays
            cached = tconfig.cache_dir / sha2
            size = cached.stat().st_size
            await asyncio.to_thread(cached.write_bytes, b"\0" * size)
            with pytest.raises(ValueError, match=r"nothing of .* played"):
                await terminal.control("start", {"items": [sha2], "attendees": ["2"]})
            await terminal.wait_until(backlog_empty(terminal), timeout=30)

        assert (await member_record(http, "1"))["sessions"] == 2
        assert (await member_record(http, "2"))["sessions"] == 0  # nothing played: not counted

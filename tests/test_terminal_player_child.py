"""libvlc runs in a child process that exists only while a session plays.

* Before a session there is no player process; while an item plays the child runs; when
  the session ends the child has exited, and libvlc was never mapped into the daemon's
  own process (so the daemon's memory is what it was before the session).
* A child killed with SIGKILL mid-item ends the session at once and cleanly: the record
  is closed with the seconds watched up to the kill (and reaches the server's report),
  the items after it are not played, the session's summary says the player was lost,
  and the next session gets a fresh child and plays.
* A child that stops answering is stopped after the command timeout, with the same
  outcome for the item: what was counted is kept and `lost` says why.
* The TV's summary screen says, in Chinese, that the session ended early and that what
  played counts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import msgspec
import pytest

from shared.hashing import sha256_file
from terminal.daemon import Terminal
from terminal.interface.snapshot import SessionSummary
from terminal.interface.tv.screens import Ui
from terminal.playback.player import Player
from terminal.playback.sessions import SessionSpec
from terminal.storage.cache import VerifiedMedia
from tests.conftest import Server, make_clip
from tests.terminal_helpers import (
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


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _libvlc_mapped() -> bool:
    return "libvlc" in Path("/proc/self/maps").read_text()


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("long") / "long.mp4", seconds=30)


async def test_child_lives_only_while_the_session_plays(tmp_path: Path, server: Server, clip: Path) -> None:
    content_id, sha = await upload(server.http, clip, "党课")
    await assign(server.http, content_id)
    config = await enroll(server.http, terminal_config(tmp_path, server.url), server.url)
    mapped_before = await asyncio.to_thread(_libvlc_mapped)
    async with Terminal(config) as terminal:
        await terminal.wait_until(item_state(terminal, sha), timeout=30)
        assert terminal.player is None  # home screen: no player, no child
        task = await terminal.start_session(SessionSpec("试播", [sha]), ["1"])
        await terminal.wait_until(lambda: terminal.player is not None and terminal.player.pid is not None, 30)
        assert terminal.player is not None
        pid = terminal.player.pid
        assert pid is not None and pid != os.getpid() and _alive(pid)
        result = await asyncio.wait_for(task, 30)
        assert result.watched[sha] == pytest.approx(5.0, abs=0.5) and not result.problem
        await terminal.wait_until(lambda: not _alive(pid), timeout=10)
        assert terminal.player is None
        if not mapped_before:  # (a test module that imports vlc itself maps it into pytest)
            assert not await asyncio.to_thread(_libvlc_mapped), "libvlc was loaded into the daemon"
    # and nothing the daemon imports loads python-vlc, which maps libvlc as it is imported
    probe = await asyncio.create_subprocess_exec(
        sys.executable, "-c",
        "import sys, terminal.daemon, terminal.interface.cli; print('vlc' in sys.modules)",
        stdout=asyncio.subprocess.PIPE)
    out, _ = await probe.communicate()
    assert out.decode().strip() == "False"


async def test_killed_child_ends_the_session_with_what_was_watched(
    tmp_path: Path, server: Server, long_clip: Path, clip2: Path,
) -> None:
    content_id, sha = await upload(server.http, long_clip, "长片")
    await assign(server.http, content_id)
    content2, sha2 = await upload(server.http, clip2, "短片")
    await assign(server.http, content2)
    await import_roster(server.http)
    config = await enroll(server.http, terminal_config(tmp_path, server.url, playback_rate=2.0), server.url)
    async with Terminal(config) as terminal:
        await terminal.wait_until(item_state(terminal, sha), timeout=30)
        await terminal.wait_until(item_state(terminal, sha2), timeout=30)
        task = await terminal.start_session(SessionSpec("冬训", [sha, sha2]), ["1"])

        def watched() -> float:
            p = terminal.player
            return p.stats.watched_seconds if p is not None and p.stats is not None else 0.0

        await terminal.wait_until(lambda: watched() >= 3.0, timeout=30)
        assert terminal.player is not None and terminal.player.pid is not None
        pid, before = terminal.player.pid, watched()
        os.kill(pid, signal.SIGKILL)
        result = await asyncio.wait_for(task, 15)

        assert "ended unexpectedly" in result.problem and "意外退出" in result.problem
        assert before <= result.watched[sha] < 20.0  # what played up to the kill, not the clip
        assert sha2 not in result.watched  # the session ended: the next item never started
        assert result.errors == 1
        snap = await terminal.snapshot()
        assert snap.session is None
        assert snap.last_session is not None and "ended unexpectedly" in snap.last_session.problem
        await terminal.wait_until(lambda: not _alive(pid), timeout=10)

        await terminal.wait_until(backlog_empty(terminal), timeout=30)  # closed, so delivered
        record = await member_record(server.http, "1")
        assert record["sessions"] == 1
        assert record["watched_seconds"] == pytest.approx(result.watched[sha], abs=0.06)  # reports: 0.1 s

        again = await asyncio.wait_for(terminal.run_session(SessionSpec("补放", [sha2]), ["1"]), 30)
        assert again.watched[sha2] == pytest.approx(4.0, abs=0.5) and not again.problem


async def test_hung_child_is_stopped_after_the_command_timeout(long_clip: Path) -> None:
    sha = await asyncio.to_thread(sha256_file, long_clip)
    media = VerifiedMedia(sha256=sha, path=long_clip, title="长片", duration=30.0)
    async with Player(headless=True, rate=2.0, command_timeout=1.0) as player:
        task = asyncio.create_task(player.play(media))
        reached = asyncio.Event()

        def check() -> None:
            if player.stats is not None and player.stats.watched_seconds >= 1:
                reached.set()

        player.listeners.append(check)
        await asyncio.wait_for(reached.wait(), 20)
        pid = player.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # libvlc hung: alive, but nothing answers
        counted = player.stats.watched_seconds if player.stats else 0.0
        await player.pause()  # returns after the timeout, with the child stopped
        stats = await asyncio.wait_for(task, 10)
        assert "did not answer" in stats.lost and stats.errors == 1
        assert stats.watched_seconds == pytest.approx(counted, abs=0.01)
        for _ in range(100):
            if not _alive(pid):
                break
            await asyncio.sleep(0.05)
        assert not _alive(pid)


async def test_summary_screen_says_the_session_ended_early() -> None:
    from tests.test_tv_focus import snapshot

    problem = "播放器进程意外退出 / the player process ended unexpectedly (exit status -9)"
    done = SessionSummary(record_id="r1", title="冬训", attendees=["1"], watched_seconds=90.0,
                          ended_at="2026-12-01T11:30:00Z", problem=problem)
    ui = Ui(xwindow=42)
    ui.update(msgspec.structs.replace(snapshot(), last_session=done))
    ui.open("summary")
    lines = [text for text, _ in ui.view().info]
    assert any("放映提前结束" in t and "播放器进程意外退出" in t for t in lines), lines
    assert not any("the player process" in t for t in lines)  # Chinese only on the TV
    ui.update(msgspec.structs.replace(snapshot(), last_session=msgspec.structs.replace(done, problem="")))
    assert not any("提前结束" in text for text, _ in ui.view().info)

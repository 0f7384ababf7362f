"""The TV interface end to end, driven by key presses only: a real county server, a real
terminal daemon (libvlc drawing into the interface's window on an Xvfb display the test
starts) and the interface as its own process. The site manager enrolls the box with the
county's 16-digit code, waits for content, starts the scheduled session, signs in two
members by number and one by name, pauses, seeks, signs late arrivals in during
playback (one by number over the video, one by name from the sign-in list, which pauses
the video), plays to the end, sees the summary, and the county's member reports show
the attendance. The overlay shows on a key and hides by itself. A screenshot of every
screen is saved under test-artifacts/tv/."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from terminal.daemon import Terminal
from terminal.network.enroll import TERMINAL_ID as STORED_ID
from terminal.storage import db as q
from tests.conftest import make_clip, serve, server_config
from tests.terminal_helpers import (
    TERMINAL_ID,
    VILLAGE,
    assign,
    backlog_empty,
    enrollment_code,
    import_roster,
    item_state,
    member_record,
    terminal_config,
    upload,
)
from tests.tv_helpers import Tv, tv, xvfb

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]
LONG_SECONDS = 90.0
SHORT_SECONDS = 4.0
SEEK = 30.0


async def _snapshot_session(terminal: Terminal) -> Any:
    return (await terminal.snapshot()).session


async def test_enroll_sign_in_play_summary_report(tmp_path: Path, clip2: Path) -> None:
    long_clip = await asyncio.to_thread(make_clip, tmp_path / "long.mp4", LONG_SECONDS, "320x240")
    async with xvfb() as display, serve(server_config(tmp_path), seed=True) as (running, http):
        c1, sha1 = await upload(http, long_clip, "党课：基层治理")
        c2, sha2 = await upload(http, clip2, "农业实用技术：果树")
        for c in (c1, c2):
            await assign(http, c)
        await import_roster(http)
        starts = datetime.now(UTC) + timedelta(hours=1)
        async with http.post("/api/v1/admin/sessions", json={
            "title": "冬训第一课", "starts_at": starts.isoformat(), "content_ids": [c1, c2],
            "village_codes": [VILLAGE],
        }) as r:
            assert r.status == 201, await r.text()
            session_id = (await r.json())["id"]
        code = await enrollment_code(http, TERMINAL_ID)

        # a box fresh from the shop: not enrolled, the county's address configured
        base = terminal_config(tmp_path, server_url=running.url, terminal_id="", headless=False,
                               audio_output="dummy", video_output="xcb_x11")
        import os
        os.environ["DISPLAY"] = display  # libvlc in the daemon draws on the test's display
        first = Terminal(base)
        await first.async_start()
        assert first.status_server is not None
        port = first.status_server.port
        url = f"http://127.0.0.1:{port}"
        async with tv(display, url, base.data_dir, tmp_path / "tv.log") as screen:
            try:
                await _enroll(screen, first, code)
            finally:
                await first.async_close()
            # the service manager starts the daemon again, now as the enrolled terminal
            enrolled = base.replace(terminal_id=TERMINAL_ID, village_code="", status_port=port)
            async with Terminal(enrolled) as terminal:
                await terminal.wait_until(item_state(terminal, sha1), timeout=60)
                await terminal.wait_until(item_state(terminal, sha2), timeout=60)
                await _session(screen, terminal, session_id, sha1, sha2)
                await terminal.wait_until(backlog_empty(terminal), timeout=30)
                await _settings(screen)

        for member_no in ("1", "2", "3", "4", "5"):
            record = await member_record(http, member_no)
            assert record["sessions"] == 1, (member_no, record)
            assert record["entries"][0]["terminal_id"] == TERMINAL_ID
            assert record["watched_seconds"] == pytest.approx(LONG_SECONDS - SEEK + SHORT_SECONDS, abs=4)
        assert (await member_record(http, "6"))["sessions"] == 0


async def _enroll(screen: Tv, terminal: Terminal, printed: str) -> None:
    code = "".join(ch for ch in printed if ch.isdigit())  # printed in groups: 1234-5678-…
    assert len(code) == 16
    state = await screen.wait_for("home", focus="enroll")  # not enrolled: the first thing offered
    assert "settings" in state.entries
    await screen.screenshot("01-home-not-enrolled")
    await screen.keys("Return")
    await screen.wait_for("enroll", focus="submit")
    await screen.keys(*code[:6])
    await screen.keys("BackSpace", code[5])  # Back deletes one digit
    await screen.screenshot("02-enroll-typing")
    await screen.keys(*code[6:])
    await screen.keys("Return")

    async def stored() -> bool:
        return bool(await terminal.db.read(lambda c: q.get_kv(c, STORED_ID)))
    await terminal.wait_until(stored, timeout=30)
    await screen.screenshot("03-enrolled")


async def _session(screen: Tv, terminal: Terminal, session_id: str, sha1: str, sha2: str) -> None:
    await screen.keys("Home")
    # the session and both courses appear by themselves; the focus is not moved by that
    await screen.wait_for("home", has=f"session:{session_id}")
    state = await screen.wait_for("home", has=f"item:{sha2}")
    await screen.keys("1")  # digit 1: the first entry, today's session
    await screen.wait_for("home", focus=f"session:{session_id}")
    assert state.entries[0] == f"session:{session_id}"
    await screen.screenshot("04-home")

    await screen.keys("Return")
    await screen.wait_for("start", focus="go", has="member:2")
    await screen.keys("1", "Return", "3", "Return")  # two members by their number
    await screen.keys("Down", "Down", "Return")  # one by name: 2 李娜 (the list is 1, 2, 3 …)
    await screen.screenshot("05-sign-in")
    await screen.keys("Up", "Up", "Return")
    await screen.wait_for("playing")

    async def playing() -> bool:
        s = await _snapshot_session(terminal)
        return s is not None and s.state == "playing" and s.position_seconds > 0
    await terminal.wait_until(playing, timeout=30)
    session = await _snapshot_session(terminal)
    assert session.attendees == ["1", "3", "2"]
    assert session.session_id == session_id

    await screen.keys("Return")  # OK while playing: pause

    async def paused() -> bool:
        s = await _snapshot_session(terminal)
        return s is not None and s.state == "paused"
    await terminal.wait_until(paused, timeout=10)
    await screen.screenshot("06-playing-paused-overlay")
    before = (await _snapshot_session(terminal)).position_seconds
    await screen.keys("Return")  # and again: resume
    await terminal.wait_until(playing, timeout=10)
    await screen.keys("Right")  # seek forward

    async def jumped() -> bool:
        s = await _snapshot_session(terminal)
        return s is not None and s.position_seconds >= before + SEEK - 1
    await terminal.wait_until(jumped, timeout=10)
    await screen.keys("4", "Return")  # a late arrival, by number, during playback

    async def late() -> bool:
        s = await _snapshot_session(terminal)
        return s is not None and "4" in s.attendees
    await terminal.wait_until(late, timeout=10)
    await screen.screenshot("07-playing-late-arrival")
    assert terminal.overlay_shown
    await terminal.wait_until(lambda: not terminal.overlay_shown, timeout=10)  # it hides by itself

    await screen.keys("Menu")  # the late sign-in list: the video pauses under it
    await screen.wait_for("late", focus="resume", has="member:5")
    await terminal.wait_until(paused, timeout=10)
    await screen.keys("Down", "Down", "Down", "Down", "Down", "Return")  # 5 秦洋刚, by name

    async def fifth() -> bool:
        s = await _snapshot_session(terminal)
        return s is not None and "5" in s.attendees
    await terminal.wait_until(fifth, timeout=10)
    await screen.screenshot("07b-late-sign-in-list")
    await screen.keys("Escape")  # Back: to the video, playing again
    await screen.wait_for("playing")
    await terminal.wait_until(playing, timeout=10)

    await screen.wait_for("summary", timeout=60)  # both items played to their end
    await screen.screenshot("08-summary")
    snap = await terminal.snapshot()
    assert snap.last_session is not None
    assert snap.last_session.attendees == ["1", "3", "2", "4", "5"]
    assert snap.last_session.watched_seconds == pytest.approx(LONG_SECONDS - SEEK + SHORT_SECONDS, abs=4)
    await screen.keys("Return")
    await screen.wait_for("home")


async def _settings(screen: Tv) -> None:
    await screen.keys("Menu")
    await screen.wait_for("settings", focus="link-test")
    await screen.keys("Return")
    await asyncio.sleep(0)  # the answer arrives on its own; the screenshot shows whichever line
    await screen.screenshot("09-settings")
    await screen.keys("Escape")
    await screen.wait_for("home")
    await screen.keys("Escape", "Escape")  # Back at home stays home
    await screen.wait_for("home")

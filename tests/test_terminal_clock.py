"""A terminal's wrong wall clock never puts attendance in the wrong period or loses it.

Real server, real terminal, real libvlc; the box's wall clock is injected into
`Terminal` (and into `Clock` for records of earlier boots), nothing is patched.

* Clock at 2000-01-01 after a power cut: the heartbeat answer shows the terminal its
  clock is off (status: not confirmed), the fleet view shows the skew as a problem, and
  the session played lands in the month it really happened, counted once.
* Clock five years ahead and stepped back three hours in the middle of a session: the
  record still ends after it starts (the length is monotonic) and lands in the real
  month.
* Records of three earlier boots sent weeks late: one with a confirmed clock, one
  whose clock read five years ahead but had a server answer in that boot (placed by the
  anchor), one at 2000-01-01 that never saw the server (flagged, counted nowhere until
  a person confirms its time, then counted in the confirmed month). Each lands in its
  month, counted once; nothing lands in 2000.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from shared.sqlite import Database
from shared.timeutil import utcnow
from terminal.daemon import Terminal
from terminal.playback.clock import Clock
from terminal.playback.sessions import Recorder, SessionSpec
from terminal.storage.migrations import MIGRATIONS
from tests.conftest import serve, server_config
from tests.terminal_helpers import (
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
YEAR_2000 = datetime(2000, 1, 1, tzinfo=UTC)
FIVE_YEARS = timedelta(days=5 * 365)


class Wall:
    """A box's wall clock: the real time moved by `offset`, which a test can step."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def __call__(self) -> datetime:
        return utcnow() + self.offset


class Mono:
    """A monotonic clock a test moves by hand (a boot in the past)."""

    def __init__(self, start: float = 100.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value


def month(t: datetime) -> str:
    return (t + timedelta(hours=8)).strftime("%Y-%m")  # the county's month


def county_day(t: datetime) -> str:
    """The county's date (Asia/Shanghai, UTC+8) of `t`, as reports take it: from 16:00
    UTC it is already the next day there."""
    return (t + timedelta(hours=8)).date().isoformat()


async def fleet_entry(http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.get("/api/v1/admin/fleet") as r:
        body = await r.json()
    return dict(next(t for t in body["terminals"] if t["id"] == TERMINAL_ID))


async def months(http: aiohttp.ClientSession, start: str, end: str) -> dict[str, dict[str, Any]]:
    async with http.get(f"/api/v1/admin/reports/terminals?from={start}&to={end}") as r:
        assert r.status == 200, await r.text()
        rows = (await r.json())["rows"]
    return {row["month"]: row for row in rows if row["terminal_id"] == TERMINAL_ID}


async def flagged(http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    async with http.get("/api/v1/admin/attendance/flagged") as r:
        return list((await r.json())["records"])


async def _ready(tmp_path: Path, clip: Path, http: aiohttp.ClientSession, url: str) -> tuple[Any, str]:
    content_id, sha = await upload(http, clip, "党课")
    await assign(http, content_id)
    await import_roster(http)
    return await enroll(http, terminal_config(tmp_path, url), url), sha


async def test_clock_reset_to_2000(tmp_path: Path, clip: Path) -> None:
    async with serve(server_config(tmp_path), seed=True) as (running, http):
        tconfig, sha = await _ready(tmp_path, clip, http, running.url)
        wall = Wall(YEAR_2000 - utcnow())
        async with Terminal(tconfig, wall_clock=wall, boot_id="boot-2000") as terminal:
            await terminal.wait_until(item_state(terminal, sha), timeout=30)
            await terminal.wait_until(lambda: terminal.heartbeats >= 1, timeout=10)
            snap = await terminal.snapshot()
            assert snap.clock_confirmed is False
            assert snap.clock_error_seconds is not None and snap.clock_error_seconds < -20 * 365 * 86400
            result = await terminal.run_session(SessionSpec("第一课", [sha]), ["1", "2"])
            assert result.started_at.year == 2000  # as the box wrote it
            await terminal.wait_until(backlog_empty(terminal), timeout=30)
        really = utcnow()

        box = await fleet_entry(http)
        assert box["clock_problem"] is True and box["clock_skew_seconds"] < -20 * 365 * 86400
        assert box["status"] != "ok"
        learning = await member_record(http, "2")
        assert learning["sessions"] == 1
        placed = datetime.fromisoformat(learning["entries"][0]["started_at"])
        assert abs(placed - result_start_real(result, wall)) < timedelta(seconds=5)
        now_month = month(really)
        report = await months(http, f"{now_month}-01", county_day(really))
        assert report[now_month]["sessions"] == 1 and report[now_month]["attendances"] == 2
        assert (await months(http, "2000-01-01", "2000-01-31"))["2000-01"]["sessions"] == 0
        assert await flagged(http) == []


def result_start_real(result: Any, wall: Wall) -> datetime:
    """When the session really began: the box's start less its clock's offset."""
    return datetime.fromisoformat(result.started_at.isoformat()) - wall.offset


async def test_five_years_ahead_and_a_step_in_the_session(tmp_path: Path, clip: Path) -> None:
    async with serve(server_config(tmp_path), seed=True) as (running, http):
        tconfig, sha = await _ready(tmp_path, clip, http, running.url)
        wall = Wall(FIVE_YEARS)
        async with Terminal(tconfig.replace(playback_rate=2.0), wall_clock=wall,
                            boot_id="boot-ahead") as terminal:
            await terminal.wait_until(item_state(terminal, sha), timeout=30)
            await terminal.wait_until(lambda: terminal.heartbeats >= 1, timeout=10)
            begun = utcnow()
            task = await terminal.start_session(SessionSpec("第二课", [sha]), ["3"])
            await terminal.wait_until(playing(terminal), timeout=15)
            wall.offset -= timedelta(hours=3)  # an NTP step back, mid-session
            result = await task
            took = utcnow() - begun
            assert sum(result.watched.values()) > 0
            assert timedelta(0) <= result.ended_at - result.started_at <= took
            await terminal.wait_until(backlog_empty(terminal), timeout=30)

        assert (await fleet_entry(http))["clock_problem"] is True
        learning = await member_record(http, "3")
        assert learning["sessions"] == 1
        entry = learning["entries"][0]
        start, end = (datetime.fromisoformat(entry[k]) for k in ("started_at", "ended_at"))
        assert abs(start - begun) < timedelta(seconds=5)
        assert timedelta(0) <= end - start <= took
        assert await flagged(http) == []


def playing(terminal: Terminal) -> Callable[[], bool]:
    def check() -> bool:
        player = terminal._player
        return player is not None and player.state == "playing"
    return check


async def _earlier_boot(
    path: Path, boot_id: str, wall: Callable[[], datetime], mono: Mono, *,
    confirmed_at: datetime | None, members: list[str], seconds: float = 3600.0,
) -> None:
    """One session recorded in an earlier boot, by the terminal's own recorder."""
    async with Database(path, MIGRATIONS, synchronous="FULL") as database:
        clock = Clock(database, wall=wall, monotonic=mono, boot_id=boot_id)
        await clock.async_load()
        if confirmed_at is not None:  # a heartbeat answered during that boot
            await clock.async_confirm(confirmed_at, mono.value, mono.value)
        recorder = Recorder(database, clock)
        mono.value += 100
        record_id, _seq, _start = await recorder.open(SessionSpec("补课", []), members)
        mono.value += seconds
        await recorder.save(record_id, {"a" * 64: seconds}, members, close=True)


async def test_batch_of_earlier_boots_sent_weeks_late(tmp_path: Path) -> None:
    now = utcnow()
    then = now - timedelta(days=35)  # weeks ago, when the box was last up
    async with serve(server_config(tmp_path), seed=True) as (running, http):
        await import_roster(http)
        tconfig = await enroll(http, terminal_config(tmp_path, running.url), running.url)
        db = tconfig.db_path
        # boot A: a good clock, confirmed by the server
        mono_a = Mono()
        await _earlier_boot(db, "boot-a", lambda: then + timedelta(seconds=mono_a.value - 100), mono_a,
                            confirmed_at=then, members=["1"])
        # boot B: the clock reset to 2000 at a power cut, no link all along
        mono_b, true_b = Mono(), then + timedelta(days=1)
        await _earlier_boot(db, "boot-b", lambda: YEAR_2000 + timedelta(seconds=mono_b.value), mono_b,
                            confirmed_at=None, members=["1", "2"])
        # boot C: five years ahead, but a heartbeat was answered in that boot
        mono_c, true_c = Mono(), then + timedelta(days=2)
        await _earlier_boot(db, "boot-c", lambda: true_c + FIVE_YEARS, mono_c,
                            confirmed_at=true_c, members=["1"])

        async with Terminal(tconfig, boot_id="boot-now") as terminal:
            terminal.wake_outbox()
            await terminal.wait_until(backlog_empty(terminal), timeout=30)

        learning = await member_record(http, "1")
        starts = sorted(datetime.fromisoformat(e["started_at"]) for e in learning["entries"])
        assert len(starts) == 2  # A and C; B waits for a person
        assert abs(starts[0] - (then + timedelta(seconds=100))) < timedelta(seconds=1)
        assert abs(starts[1] - (true_c + timedelta(seconds=100))) < timedelta(seconds=1)
        [held] = await flagged(http)
        assert held["reasons"] == ["clock_unconfirmed"]
        assert held["reported_started_at"].startswith("2000-01-01")
        assert held["watched_seconds"] == 3600 and held["attendees"] == 2
        assert (await member_record(http, "2"))["sessions"] == 0

        url = f"/api/v1/admin/attendance/flagged/{TERMINAL_ID}/{held['record_id']}/confirm"
        async with http.post(url, json={"started_at": true_b.isoformat()}) as r:
            assert r.status == 204
        assert await flagged(http) == []
        learning = await member_record(http, "2")
        assert learning["sessions"] == 1
        placed_b = datetime.fromisoformat(learning["entries"][0]["started_at"])
        assert abs(placed_b - true_b) < timedelta(seconds=1)

        first, last = then - timedelta(days=1), now
        report = await months(http, county_day(first), county_day(last))
        expected: dict[str, int] = {}
        for t in (then, true_b, true_c):
            expected[month(t)] = expected.get(month(t), 0) + 1
        assert {m: r["sessions"] for m, r in report.items() if r["sessions"]} == expected
        assert (await months(http, "2000-01-01", "2000-01-31"))["2000-01"]["sessions"] == 0
        assert (await member_record(http, "1"))["sessions"] == 3

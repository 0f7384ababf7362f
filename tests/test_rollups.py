"""The report roll-ups stay equal to what the attendance rows say.

The coverage and terminal-month reports read per-day roll-ups kept in the transaction
that stores or confirms a record. These tests drive the real server (on the run's
engine) with records on time, late, flagged then confirmed, off the roster and at a
county midnight, and check: the roll-ups kept as records arrived equal the roll-ups
rebuilt from scratch; a record's county day is Asia/Shanghai's, not UTC's; and a server
restarted with another time zone rebuilds them on that zone's days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, text

from server.appkeys import CONFIG, DB
from server.queries import rollups
from server.runner import RunningServer
from tests.conftest import Server, add_account, admin_session
from tests.test_attendance import T1, V1, record, roster, send

pytestmark = pytest.mark.asyncio
__all__ = ["roster"]  # the fixture, used by name


def snapshot(c: Connection) -> tuple[list[Any], list[Any]]:
    days = c.execute(text(
        "SELECT terminal_id, day, sessions, watched_seconds, attendances FROM terminal_days "
        "WHERE sessions != 0 OR attendances != 0 ORDER BY terminal_id, day")).all()
    members = c.execute(text(
        "SELECT member_no, day, records FROM member_days WHERE records != 0 "
        "ORDER BY member_no, day")).all()
    return ([(t, d, s, round(w, 6), a) for t, d, s, w, a in days], [tuple(m) for m in members])


async def coverage(server: Server, first: str, last: str) -> int:
    async with server.http.get(f"/api/v1/admin/reports/coverage?from={first}&to={last}") as r:
        assert r.status == 200, await r.text()
        rows = (await r.json())["rows"]
    return int(next(x["trained"] for x in rows if x["level"] == "village" and x["code"] == V1))


async def test_rollups_kept_as_records_arrive_equal_a_rebuild(server: Server,
                                                               roster: list[str]) -> None:
    now = datetime.now(UTC)
    on_time = [record(roster[:3], now - timedelta(hours=h), watched=1800) for h in (2, 3)]
    late = record(roster[2:5], datetime(2026, 3, 9, 1, 0, tzinfo=UTC), watched=4000)
    short = record(roster[:1], now - timedelta(hours=5), watched=20)
    stranger = record([*roster[:1], "no-such-member"], now - timedelta(hours=6), watched=900)
    backwards = record(roster[:2], now - timedelta(hours=3), watched=1200)
    backwards["ended_at"] = (now - timedelta(hours=5)).isoformat()  # held for a person
    for batch in ([*on_time, short], [late], [stranger, backwards]):
        status, _ = await send(server, batch)
        assert status == 200

    real = datetime(2026, 9, 15, 1, 0, tzinfo=UTC)
    for rec in (backwards, stranger):
        url = f"/api/v1/admin/attendance/flagged/{T1}/{rec['record_id']}/confirm"
        async with server.http.post(url, json={"started_at": real.isoformat()}) as r:
            assert r.status == 204, await r.text()

    db = server.running.app[DB]
    kept = await db.read(snapshot)
    assert kept[0], "records were counted"
    basis = server.running.app[CONFIG].rollup_basis
    await db.write(lambda c: rollups.rebuild(c, basis))
    assert await db.read(snapshot) == kept
    # the confirmed records moved to 2026-09-15 and count there, attendees off the roster too
    september = [row for row in kept[0] if row[1] == "2026-09-15"]
    assert september == [(T1, "2026-09-15", 2, 2100.0, 4)]
    assert await coverage(server, "2026-09-01", "2026-09-30") == 2
    assert await coverage(server, "2026-03-01", "2026-03-31") == 3  # the late one


async def test_a_county_day_is_the_county_s_and_a_new_time_zone_rebuilds(
        server: Server, roster: list[str]) -> None:
    # 16:30 UTC on 31 October is 00:30 on 1 November in Asia/Shanghai
    midnight = record(roster[:2], datetime(2026, 10, 31, 16, 30, tzinfo=UTC), watched=3600)
    assert (await send(server, [midnight]))[0] == 200
    assert await coverage(server, "2026-11-01", "2026-11-01") == 2
    assert await coverage(server, "2026-10-01", "2026-10-31") == 0
    async with server.http.get(
            "/api/v1/admin/reports/terminals?from=2026-10-01&to=2026-11-30") as r:
        months = {(x["terminal_id"], x["month"]): x for x in (await r.json())["rows"]}
    assert months[(T1, "2026-11")]["sessions"] == 1 and months[(T1, "2026-10")]["sessions"] == 0

    # The same data under another time zone: a second server started on it rebuilds
    # the roll-ups at start.
    config = server.config.replace(time_zone="UTC")
    async with RunningServer(config) as running:
        token = await add_account(running, username="utc-admin")
        async with admin_session(running, token) as http:
            async with http.get("/api/v1/admin/reports/coverage?from=2026-10-31&to=2026-10-31") as r:
                rows = (await r.json())["rows"]
            assert next(x["trained"] for x in rows if x["code"] == V1) == 2
            basis = await running.app[DB].read(rollups.basis_in_force)
            assert basis == "UTC|1.0"

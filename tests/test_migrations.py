"""The server's migrations carry data forward: attendance stored under the first schema
is still there, and still counted, after the move to integer keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.county_import import load_county
from server.migrations import MIGRATIONS
from server.queries import reports
from shared.sqlite import Database
from shared.timeutil import from_db
from tests.conftest import COUNTY

pytestmark = pytest.mark.asyncio


async def test_attendance_survives_the_key_change(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    before = [m for m in MIGRATIONS if m.name < "0004"]
    async with Database(path, before) as db:
        await db.write(lambda c: load_county(c, COUNTY))

        def old_rows(c: object) -> None:
            import sqlite3
            assert isinstance(c, sqlite3.Connection)
            c.execute(
                "INSERT INTO members (member_no, village_code, name, updated_at) "
                "VALUES ('7', '140121100001', '王伟', '2026-01-01T00:00:00.000000Z')")
            c.execute(
                "INSERT INTO attendance (terminal_id, record_id, seq, started_at, ended_at, "
                "watched_seconds, terminal_clock, received_at, digest) VALUES ('T140121100001', "
                "'r1', 1, '2026-10-01T01:00:00.000000Z', '2026-10-01T02:00:00.000000Z', 3600, "
                "'2026-10-01T02:00:00.000000Z', '2026-10-01T02:00:01.000000Z', 'd')")
            c.execute("INSERT INTO attendance_items VALUES ('T140121100001', 'r1', ?, 3600)",
                      ("a" * 64,))
            c.execute("INSERT INTO attendance_members VALUES ('T140121100001', 'r1', '7')")

        await db.write(old_rows)
    async with Database(path, MIGRATIONS) as db:
        rows = await db.read(lambda c: reports.member_sessions(c, "7"))
        assert [(r.record_id, r.watched_seconds) for r in rows] == [("r1", 3600.0)]
        coverage = await db.read(lambda c: reports.coverage_by_village(
            c, from_db("2026-10-01T00:00:00.000000Z"), from_db("2026-11-01T00:00:00.000000Z"), 60))
        village = next(r for r in coverage if r.code == "140121100001")
        assert (village.members, village.trained) == (1, 1)

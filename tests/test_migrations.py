"""The server's migrations carry data forward: attendance stored under the first schema
is still there, and still counted, after the move to integer keys and once the report
roll-ups are built from it at the next start. (SQLite only: PostgreSQL begins at 0010.)"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, text

from server.db import Database, sqlite_url
from server.migrations import MIGRATIONS
from server.queries import reports, rollups

pytestmark = pytest.mark.asyncio


async def test_attendance_survives_the_key_change_and_reaches_the_rollups(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "db.sqlite3")
    before = [m for m in MIGRATIONS if m.name < "0004"]
    async with Database(url, before) as db:
        def old_rows(c: Connection) -> None:
            # the county as the first schema held it (today's loader writes today's schema)
            c.execute(text("INSERT INTO units (code, name, kind) VALUES ('140121100', '清源镇', 'town')"))
            c.execute(text("INSERT INTO villages (code, name, unit_code) "
                           "VALUES ('140121100001', '杜和庄村', '140121100')"))
            c.execute(text("INSERT INTO terminals (id, village_code, name, created_at) VALUES "
                           "('T140121100001', '140121100001', '杜和庄村终端站点', '2026-01-01T00:00:00Z')"))
            c.execute(text(
                "INSERT INTO members (member_no, village_code, name, updated_at) "
                "VALUES ('7', '140121100001', '王伟', '2026-01-01T00:00:00.000000Z')"))
            c.execute(text(
                "INSERT INTO attendance (terminal_id, record_id, seq, started_at, ended_at, "
                "watched_seconds, terminal_clock, received_at, digest) VALUES ('T140121100001', "
                "'r1', 1, '2026-10-01T01:00:00.000000Z', '2026-10-01T02:00:00.000000Z', 3600, "
                "'2026-10-01T02:00:00.000000Z', '2026-10-01T02:00:01.000000Z', 'd')"))
            c.execute(text("INSERT INTO attendance_items VALUES ('T140121100001', 'r1', :sha, 3600)"),
                      {"sha": "a" * 64})
            c.execute(text("INSERT INTO attendance_members VALUES ('T140121100001', 'r1', '7')"))

        await db.write(old_rows)
    basis = rollups.Basis(ZoneInfo("Asia/Shanghai"), 60.0)
    async with Database(url, MIGRATIONS) as db:
        # 0014: every township joined the county its code names
        assert await db.read(lambda c: c.execute(text(
            "SELECT u.county_code, c.code FROM units u JOIN counties c ON c.code = u.county_code"
        )).all()) == [("140121", "140121")]
        rows = await db.read(lambda c: reports.member_sessions(c, "7"))
        assert [(r.record_id, r.watched_seconds) for r in rows] == [("r1", 3600.0)]
        assert await db.write(lambda c: rollups.ensure(c, basis)) == 1
        assert await db.write(lambda c: rollups.ensure(c, basis)) is None  # built once
        coverage = await db.read(lambda c: reports.coverage_by_village(c, "2026-10-01", "2026-10-31"))
        village = next(r for r in coverage if r.code == "140121100001")
        assert (village.members, village.trained) == (1, 1)
        months = await db.read(lambda c: reports.terminal_months(c, "2026-10-01", "2026-10-31"))
        assert [(r.terminal_id, r.month, r.sessions, r.attendances) for r in months] == [
            ("T140121100001", "2026-10", 1, 1)]

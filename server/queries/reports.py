"""Coverage, member learning records and the monthly rule per terminal.

Periods are given as UTC instants; months are the county's (the setting `time_zone`,
Asia/Shanghai by default): the caller gives each month's bounds as UTC instants, so a
session at 07:30 on the 1st counts in that month.

Only counted records enter any figure: placed (not held for a time flag, or confirmed by
a person) and with something watched. An attendee counts only when on the village
roster, or when a person confirmed the record.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.timeutil import to_db


@dataclass(frozen=True)
class Month:
    """A county month ("YYYY-MM") and the UTC instants [start, end) it covers in a period."""

    month: str
    start: datetime
    end: datetime


COUNTED = "a.held = 0 AND a.watched_seconds > 0"  # a record that counts, as `a`
ATTENDED = "(am.on_roster = 1 OR a.confirmed_at IS NOT NULL)"  # an attendee who counts, as `am`

_COVERAGE_SQL = f"""
WITH trained AS (
    SELECT DISTINCT am.member_no FROM attendance a
    JOIN attendance_members am ON am.attendance_id = a.id
    WHERE a.started_at >= :start AND a.started_at < :end AND a.watched_seconds >= :min
    AND {COUNTED} AND {ATTENDED}
)
SELECT v.code, v.name, v.unit_code, u.name AS unit_name,
       COUNT(m.member_no) AS members, COUNT(t.member_no) AS trained
FROM villages v
JOIN units u ON u.code = v.unit_code
LEFT JOIN members m ON m.village_code = v.code
LEFT JOIN trained t ON t.member_no = m.member_no
GROUP BY v.code ORDER BY v.code
"""


@dataclass(frozen=True)
class VillageCoverage:
    """A village's members and how many of them were trained in the period."""

    code: str
    name: str
    unit_code: str
    unit_name: str
    members: int
    trained: int


@dataclass(frozen=True)
class MemberSession:
    """A counted record one member attended; `contents` the titles shown, joined by 、."""

    terminal_id: str
    record_id: str
    session_id: str | None
    title: str
    started_at: str
    ended_at: str
    watched_seconds: float
    village_code: str
    village_name: str
    contents: str | None


@dataclass(frozen=True)
class TerminalRecordRow:
    record_id: str
    session_id: str | None
    title: str
    started_at: str
    ended_at: str
    watched_seconds: float
    received_at: str
    attendees: int


def coverage_by_village(
    conn: sqlite3.Connection, start: datetime, end: datetime, min_seconds: float
) -> list[VillageCoverage]:
    return [VillageCoverage(*r) for r in conn.execute(
        _COVERAGE_SQL, {"start": to_db(start), "end": to_db(end), "min": min_seconds}
    )]


def member_sessions(conn: sqlite3.Connection, member_no: str) -> list[MemberSession]:
    return [MemberSession(*r) for r in conn.execute(
        "SELECT a.terminal_id, a.record_id, a.session_id, a.title, a.started_at, a.ended_at, "
        "a.watched_seconds, t.village_code, v.name AS village_name, "
        "(SELECT group_concat(c.title, '、') FROM attendance_items i "
        " LEFT JOIN contents c ON c.sha256 = i.sha256 "
        " WHERE i.attendance_id = a.id) AS contents "
        "FROM attendance_members am JOIN attendance a ON a.id = am.attendance_id "
        "JOIN terminals t ON t.id = a.terminal_id JOIN villages v ON v.code = t.village_code "
        f"WHERE am.member_no = ? AND {COUNTED} AND {ATTENDED} ORDER BY a.started_at",
        (member_no,),
    )]


@dataclass(frozen=True)
class TerminalMonthRow:
    """One terminal's counted records in one county month ("YYYY-MM")."""

    terminal_id: str
    village_code: str
    village_name: str
    month: str
    sessions: int
    watched_seconds: float
    attendances: int


@dataclass(frozen=True)
class TerminalPoint:
    id: str
    village_code: str
    village_name: str


def terminal_months(conn: sqlite3.Connection, months: Sequence[Month]) -> list[TerminalMonthRow]:
    """Per terminal and month: sessions, watched_seconds, attendances (counted records)."""
    if not months:
        return []
    # Member-attendances are counted per record through the (attendance_id, member_no) key,
    # not by a subquery per month: a year of a county's records stays well under a second.
    bounds = ", ".join("(?, ?, ?)" for _ in months)
    return [TerminalMonthRow(*r) for r in conn.execute(
        f"WITH months(month, lo, hi) AS (VALUES {bounds}) "
        "SELECT a.terminal_id, t.village_code, v.name AS village_name, "
        "mo.month AS month, COUNT(*) AS sessions, "
        "SUM(a.watched_seconds) AS watched_seconds, "
        "SUM((SELECT COUNT(*) FROM attendance_members am WHERE am.attendance_id = a.id "
        f"AND {ATTENDED})) AS attendances "
        "FROM attendance a JOIN terminals t ON t.id = a.terminal_id "
        "JOIN villages v ON v.code = t.village_code "
        "JOIN months mo ON a.started_at >= mo.lo AND a.started_at < mo.hi "
        f"WHERE a.started_at >= ? AND a.started_at < ? AND {COUNTED} "
        "GROUP BY a.terminal_id, mo.month ORDER BY a.terminal_id, mo.month",
        [*(v for mo in months for v in (mo.month, to_db(mo.start), to_db(mo.end))),
         to_db(months[0].start), to_db(months[-1].end)],
    )]


def all_terminals(conn: sqlite3.Connection) -> list[TerminalPoint]:
    return [TerminalPoint(*r) for r in conn.execute(
        "SELECT t.id, t.village_code, v.name AS village_name FROM terminals t "
        "JOIN villages v ON v.code = t.village_code ORDER BY t.id"
    )]


def terminal_records(conn: sqlite3.Connection, terminal_id: str, limit: int) -> list[TerminalRecordRow]:
    """A terminal's latest attendance records, newest first, with how many signed in."""
    return [TerminalRecordRow(*r) for r in conn.execute(
        "SELECT a.record_id, a.session_id, a.title, a.started_at, a.ended_at, a.watched_seconds, "
        "a.received_at, (SELECT COUNT(*) FROM attendance_members am WHERE am.attendance_id = a.id) "
        "AS attendees FROM attendance a WHERE a.terminal_id = ? ORDER BY a.started_at DESC LIMIT ?",
        (terminal_id, limit),
    )]

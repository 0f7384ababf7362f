"""Coverage, member learning records and the monthly rule per terminal.

Periods are given as UTC instants; months are the county's (the setting `time_zone`,
Asia/Shanghai by default): the caller gives each month's bounds as UTC instants, so a
session at 07:30 on the 1st counts in that month.

Only counted records enter any figure: placed (not held for a time flag, or confirmed by
a person) and with something watched. An attendee counts only when on the village
roster, or when a person confirmed the record.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from server.queries import in_county


@dataclass(frozen=True)
class Month:
    """A county month ("YYYY-MM") and the UTC instants [start, end) it covers in a period."""

    month: str
    start: datetime
    end: datetime


COUNTED = "a.held = 0 AND a.watched_seconds > 0"  # a record that counts, as `a`
ATTENDED = "(am.on_roster = 1 OR a.confirmed_at IS NOT NULL)"  # an attendee who counts, as `am`

# Trained = attended a counted record watched at least counted_min_seconds on some day
# of the period: read from the member-day roll-up, not from every attendance row, one
# look-up of its primary key (member, day) per member of the villages asked for, so that
# a county's coverage reads its own members' days only, whatever the period.
TRAINED = """EXISTS (SELECT 1 FROM member_days md WHERE md.member_no = m.member_no
    AND md.day >= :first AND md.day <= :last AND md.records > 0)"""

_COVERAGE = text(f"""
SELECT v.code, v.name, v.unit_code, u.name AS unit_name,
       COUNT(m.member_no) AS members, COUNT(CASE WHEN {TRAINED} THEN 1 END) AS trained
FROM villages v
JOIN units u ON u.code = v.unit_code
LEFT JOIN members m ON m.village_code = v.code
WHERE {in_county('u.county_code')}
GROUP BY v.code, v.name, v.unit_code, u.name ORDER BY v.code
""")


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


def coverage_by_village(conn: Connection, first_day: str, last_day: str,
                        county: str | None = None) -> list[VillageCoverage]:
    """Members and trained members per village of `county` (None: the province) over
    county days [first_day, last_day] ("YYYY-MM-DD", both included), from the roll-ups
    (server/queries/rollups.py)."""
    return [VillageCoverage(*r) for r in conn.execute(
        _COVERAGE, {"first": first_day, "last": last_day, "county": county}
    )]


_MEMBER_SESSIONS = text(
    "SELECT a.id, a.terminal_id, a.record_id, a.session_id, a.title, a.started_at, a.ended_at, "
    "a.watched_seconds, t.village_code, v.name AS village_name "
    "FROM attendance_members am JOIN attendance a ON a.id = am.attendance_id "
    "JOIN terminals t ON t.id = a.terminal_id JOIN villages v ON v.code = t.village_code "
    f"WHERE am.member_no = :member AND {COUNTED} AND {ATTENDED} ORDER BY a.started_at, a.id"
)

# The titles of what each of those records showed, in item (sha256) order.
_MEMBER_CONTENTS = text(
    "SELECT i.attendance_id, c.title FROM attendance_members am "
    "JOIN attendance a ON a.id = am.attendance_id "
    "JOIN attendance_items i ON i.attendance_id = a.id "
    "JOIN contents c ON c.sha256 = i.sha256 "
    f"WHERE am.member_no = :member AND {COUNTED} AND {ATTENDED} "
    "ORDER BY i.attendance_id, i.sha256"
)


def member_sessions(conn: Connection, member_no: str) -> list[MemberSession]:
    titles: dict[int, list[str]] = defaultdict(list)
    for attendance_id, title in conn.execute(_MEMBER_CONTENTS, {"member": member_no}):
        titles[attendance_id].append(title)
    return [
        MemberSession(
            terminal_id=r.terminal_id, record_id=r.record_id, session_id=r.session_id,
            title=r.title, started_at=r.started_at, ended_at=r.ended_at,
            watched_seconds=r.watched_seconds, village_code=r.village_code,
            village_name=r.village_name,
            contents="、".join(titles[r.id]) if r.id in titles else None,
        )
        for r in conn.execute(_MEMBER_SESSIONS, {"member": member_no})
    ]


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


_TERMINAL_MONTHS = text(
    "SELECT d.terminal_id, t.village_code, v.name AS village_name, "
    "substr(d.day, 1, 7) AS month, CAST(SUM(d.sessions) AS BIGINT) AS sessions, "
    "CAST(SUM(d.watched_seconds) AS DOUBLE PRECISION) AS watched_seconds, "
    "CAST(SUM(d.attendances) AS BIGINT) AS attendances "
    "FROM terminal_days d JOIN terminals t ON t.id = d.terminal_id "
    "JOIN villages v ON v.code = t.village_code JOIN units u ON u.code = v.unit_code "
    f"WHERE d.day >= :first AND d.day <= :last AND {in_county('u.county_code')} "
    "GROUP BY d.terminal_id, t.village_code, v.name, substr(d.day, 1, 7) "
    "HAVING SUM(d.sessions) > 0 "
    "ORDER BY d.terminal_id, substr(d.day, 1, 7)"
)


def terminal_months(conn: Connection, first_day: str, last_day: str,
                    county: str | None = None) -> list[TerminalMonthRow]:
    """Per terminal of `county` (None: the province) and county month ("YYYY-MM") within
    county days [first_day, last_day] (both included): counted sessions, seconds watched
    in them, attendances; from the terminal-day roll-up. Months without a counted session
    are left out."""
    return [TerminalMonthRow(*r) for r in conn.execute(
        _TERMINAL_MONTHS, {"first": first_day, "last": last_day, "county": county}
    )]


_ALL_TERMINALS = text(
    "SELECT t.id, t.village_code, v.name AS village_name FROM terminals t "
    "JOIN villages v ON v.code = t.village_code JOIN units u ON u.code = v.unit_code "
    f"WHERE {in_county('u.county_code')} ORDER BY t.id"
)

_TERMINAL_IN_COUNTY = text(
    "SELECT 1 FROM terminals t JOIN villages v ON v.code = t.village_code "
    f"JOIN units u ON u.code = v.unit_code WHERE t.id = :terminal AND {in_county('u.county_code')}"
)

_TERMINAL_RECORDS = text(
    "SELECT a.record_id, a.session_id, a.title, a.started_at, a.ended_at, a.watched_seconds, "
    "a.received_at, (SELECT COUNT(*) FROM attendance_members am WHERE am.attendance_id = a.id) "
    "AS attendees FROM attendance a WHERE a.terminal_id = :terminal "
    "ORDER BY a.started_at DESC, a.id DESC LIMIT :limit"
)


def all_terminals(conn: Connection, county: str | None = None) -> list[TerminalPoint]:
    """Every terminal point of `county` (None: the province), by id."""
    return [TerminalPoint(*r) for r in conn.execute(_ALL_TERMINALS, {"county": county})]


def terminal_records(conn: Connection, terminal_id: str, limit: int, county: str | None = None
                     ) -> list[TerminalRecordRow] | None:
    """A terminal's latest attendance records, newest first, with how many signed in;
    None when there is no such terminal in `county` (None: the province)."""
    if conn.execute(_TERMINAL_IN_COUNTY, {"terminal": terminal_id, "county": county}).first() is None:
        return None
    return [TerminalRecordRow(*r) for r in conn.execute(
        _TERMINAL_RECORDS, {"terminal": terminal_id, "limit": int(limit)}
    )]

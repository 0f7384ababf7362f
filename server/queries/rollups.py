"""Roll-ups that keep the reports fast: what each terminal and each member did per day.

* `terminal_days(terminal_id, day, sessions, watched_seconds, attendances)`: counted
  records of a terminal on a county day (YYYY-MM-DD in the `time_zone` setting), the
  seconds watched in them, and the attendees who count;
* `member_days(member_no, day, records)`: counted records a member attended that day
  which were watched at least `counted_min_seconds` (what makes a member "trained").

They change in the same transaction as what changes them: new records (ingest, late ones
included: a record lands on the day it was held, whenever it arrives) and a flagged
record a person confirms (its old contribution is taken out, its new one put in). The
coverage and terminal-month reports read them instead of every attendance row.

Both depend on two settings (the time zone and `counted_min_seconds`), recorded as the
roll-ups' basis in `meta`; when either changes, `rebuild()` recomputes them from the
attendance rows at the next start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, text

from server.db import executemany
from server.queries import trained_months
from server.queries.reports import ATTENDED, COUNTED
from shared.timeutil import from_db

BASIS_KEY = "rollup_basis"
CHUNK = 2000  # attendance rows read per statement
REBUILD_CACHE_KIB = 256 << 10  # SQLite's page cache while the roll-ups are rebuilt


@dataclass(frozen=True)
class Basis:
    """What the roll-ups are computed against: the county's time zone (its days) and
    the watched seconds that make an attendee trained."""

    tz: ZoneInfo
    min_seconds: float

    @property
    def key(self) -> str:
        return f"{self.tz.key}|{self.min_seconds!r}"

    def day(self, started_at: str) -> str:
        """The county day ("YYYY-MM-DD") of an RFC 3339 UTC instant as stored."""
        return from_db(started_at).astimezone(self.tz).date().isoformat()


_CONTRIBUTIONS = text(
    "SELECT a.id, a.terminal_id, a.started_at, a.watched_seconds, am.member_no "
    "FROM attendance a LEFT JOIN attendance_members am ON am.attendance_id = a.id "
    "AND (am.on_roster = 1 OR a.confirmed_at IS NOT NULL) "
    "WHERE a.id IN :ids AND a.held = 0 AND a.watched_seconds > 0"
).bindparams(bindparam("ids", expanding=True))

_ADD_TERMINAL_DAY = text(
    "INSERT INTO terminal_days (terminal_id, day, sessions, watched_seconds, attendances) "
    "VALUES (:terminal_id, :day, :sessions, :watched, :attendances) "
    "ON CONFLICT (terminal_id, day) DO UPDATE SET "
    "sessions = terminal_days.sessions + excluded.sessions, "
    "watched_seconds = terminal_days.watched_seconds + excluded.watched_seconds, "
    "attendances = terminal_days.attendances + excluded.attendances"
)
_ADD_MEMBER_DAY = text(
    "INSERT INTO member_days (member_no, day, records) VALUES (:member_no, :day, :records) "
    "ON CONFLICT (member_no, day) DO UPDATE SET records = member_days.records + excluded.records"
)


class Contributions:
    """What some counted records add to the roll-ups, summed in memory, then written
    with one statement per table (`write`)."""

    def __init__(self, basis: Basis) -> None:
        self.basis = basis
        self.terminals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0])
        self.members: dict[tuple[str, str], int] = defaultdict(int)

    def record(self, terminal_id: str, started_at: str, watched: float,
               attendees: Iterable[str]) -> None:
        """A counted record (not held, something watched) and the attendees who count."""
        day = self.basis.day(started_at)
        sums = self.terminals[(terminal_id, day)]
        sums[0] += 1
        sums[1] += watched
        trained = watched >= self.basis.min_seconds
        for member_no in attendees:
            sums[2] += 1
            if trained:
                self.members[(member_no, day)] += 1

    def write(self, conn: Connection, sign: int = 1) -> None:
        executemany(conn, _ADD_TERMINAL_DAY, [
            {"terminal_id": t, "day": d, "sessions": sign * int(s[0]),
             "watched": sign * float(s[1]), "attendances": sign * int(s[2])}
            for (t, d), s in self.terminals.items()
        ])
        executemany(conn, _ADD_MEMBER_DAY, [
            {"member_no": m, "day": d, "records": sign * n} for (m, d), n in self.members.items()
        ])
        if sign > 0:
            trained_months.mark_new(conn, self.members)
        else:
            trained_months.mark(conn, (m for m, _ in self.members))


def apply(conn: Connection, attendance_ids: Sequence[int], basis: Basis, sign: int = 1) -> None:
    """Add (`sign` = 1) or take out (-1) what these attendance rows contribute, as they
    stand now: only counted records (not held, something watched) contribute, and of
    their attendees only those who count (on the roster, or the record confirmed)."""
    records: dict[int, tuple[str, str, float, list[str]]] = {}
    for start in range(0, len(attendance_ids), CHUNK):
        chunk = list(attendance_ids[start:start + CHUNK])
        for row_id, terminal_id, started_at, watched, member_no in conn.execute(
            _CONTRIBUTIONS, {"ids": chunk}
        ):
            entry = records.setdefault(row_id, (terminal_id, started_at, watched, []))
            if member_no is not None:
                entry[3].append(member_no)
    sums = Contributions(basis)
    for terminal_id, started_at, watched, attendees in records.values():
        sums.record(terminal_id, started_at, watched, attendees)
    sums.write(conn, sign)


def basis_in_force(conn: Connection) -> str | None:
    return conn.execute(text("SELECT value FROM meta WHERE key = :key"),
                        {"key": BASIS_KEY}).scalar_one_or_none()


# The same sums as `Contributions`, over every attendance row, in two statements. The
# county day of `started_at` is `{day}`: PostgreSQL's own time-zone conversion (the same
# IANA database as zoneinfo), on SQLite `county_day()`, a function registered for the
# rebuild that calls `Basis.day`.
_REBUILD_TERMINAL_DAYS = f"""
INSERT INTO terminal_days (terminal_id, day, sessions, watched_seconds, attendances)
SELECT r.terminal_id, r.day, COUNT(*), SUM(r.watched_seconds), SUM(r.attendees) FROM (
    SELECT a.terminal_id, {{day}} AS day, a.watched_seconds,
           (SELECT COUNT(*) FROM attendance_members am
            WHERE am.attendance_id = a.id AND {ATTENDED}) AS attendees
    FROM attendance a WHERE {COUNTED}
) r GROUP BY r.terminal_id, r.day
"""
_REBUILD_MEMBER_DAYS = f"""
INSERT INTO member_days (member_no, day, records)
SELECT r.member_no, r.day, COUNT(*) FROM (
    SELECT am.member_no, {{day}} AS day FROM attendance a
    JOIN attendance_members am ON am.attendance_id = a.id AND {ATTENDED}
    WHERE {COUNTED} AND a.watched_seconds >= :min_seconds
) r GROUP BY r.member_no, r.day
"""
_PG_DAY = "to_char(a.started_at::timestamptz AT TIME ZONE :tz, 'YYYY-MM-DD')"


def rebuild(conn: Connection, basis: Basis) -> int:
    """Recompute both roll-ups from every attendance row, in SQL, and the trained months
    from them; returns the attendance rows there are."""
    conn.execute(text("DELETE FROM terminal_days"))
    conn.execute(text("DELETE FROM member_days"))
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        day, binds = "county_day(a.started_at)", {}
        minute_days: dict[str, str] = {}

        def county_day(started_at: str) -> str:  # a day is the same for a whole minute
            minute = started_at[:16]
            found = minute_days.get(minute)
            if found is None:
                found = minute_days[minute] = basis.day(started_at)
            return found

        driver = conn.connection.driver_connection
        driver.create_function("county_day", 1, county_day, deterministic=True)  # type: ignore[union-attr]
        # the grouping sorts and the roll-ups' indexes are built in the page cache: a
        # quarter GiB for the rebuild (500,000 records: the two statements took 22 s with
        # the default cache, 14 s with this one)
        cache_pages = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
        conn.exec_driver_sql(f"PRAGMA cache_size={-REBUILD_CACHE_KIB}")
    else:
        day, binds = _PG_DAY, {"tz": basis.tz.key}
    try:
        conn.execute(text(_REBUILD_TERMINAL_DAYS.format(day=day)), binds)
        conn.execute(text(_REBUILD_MEMBER_DAYS.format(day=day)),
                     {**binds, "min_seconds": basis.min_seconds})
        trained_months.rebuild(conn)
    finally:
        if sqlite:
            conn.exec_driver_sql(f"PRAGMA cache_size={int(cache_pages)}")
    conn.execute(
        text("INSERT INTO meta (key, value) VALUES (:key, :value) "
             "ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
        {"key": BASIS_KEY, "value": basis.key},
    )
    return int(conn.execute(text("SELECT COUNT(*) FROM attendance")).scalar_one())


def ensure(conn: Connection, basis: Basis) -> int | None:
    """Rebuild when the roll-ups were computed on another basis (or never); returns the
    attendance rows read, or None when they were up to date."""
    if basis_in_force(conn) == basis.key:
        return None
    return rebuild(conn, basis)

"""Trained months per county: the province's coverage without a look-up per member.

A member is trained in a period when some member-day of it has records (rollups.py).
Over whole county months, the province counts each member once, at the first month of
the period the member was trained in: the one whose previous trained month (`previous`,
'' for none) falls before the period. Two tables hold that:

* `member_months(member_no, month, county_code)`: the months ("YYYY-MM") each roster
  member was trained in, and the county they count in (the member's village's);
* `county_months(county_code, month, previous, members)`: how many members of a county
  were trained in `month` and, before it, last in `previous`.

so trained over months [a, b] = SUM(members) WHERE a <= month <= b AND previous < a. A
period that starts or ends inside a month takes off the members counted only for its
cut-off days (`trained_by_county`). One county's figure is a few hundred rows, however
many members it has (900,000 in a province).

The county rows are shared by every terminal of a county: updated in the transaction
that stores a record, ingests from several server processes would wait on each other.
So the ingest only marks members whose months may have changed (`months_pending`, a row
per member), and `fold` brings them into the county rows, FOLD_LIMIT members per write
so that the terminals' writes go between (10,000 members took 0.54 s on SQLite, 1.5 s on
PostgreSQL): the server folds every FOLD_SECONDS and before the province's report
(`fold_all`). A member's village moving to another
county, or a person confirming a record, marks its members too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import islice

from sqlalchemy import Connection, bindparam, text

from server.db import Database, executemany

FOLD_SECONDS = 60.0
FOLD_LIMIT = 250  # members folded per write
_CHUNK = 500  # members per statement
_FOLD_KEY = "trained_months_fold"  # the meta row a fold holds, so that folds run one at a time

_MARK = text(
    "INSERT INTO months_pending (member_no, mark) VALUES (:member_no, 1) "
    "ON CONFLICT (member_no) DO UPDATE SET mark = months_pending.mark + 1"
)
_FOLDED = text(
    "SELECT member_no, month, county_code FROM member_months WHERE member_no IN :numbers "
    "ORDER BY member_no, month"
).bindparams(bindparam("numbers", expanding=True))
# The next marked members, each with its folded months and county, its trained months
# and its village's county: one row per member, the months joined by commas (`{join}`
# is the engine's aggregate of text, `{sep}` its separator argument). The members are
# taken first: PostgreSQL otherwise may work out every marked member's months before
# keeping `:limit` of them (13.7 s, not 2.9 s, for 10,000 marked members).
_PENDING = """
SELECT p.member_no, p.mark,
       (SELECT {join}(mm.month{sep}) FROM member_months mm WHERE mm.member_no = p.member_no),
       (SELECT MIN(mm.county_code) FROM member_months mm WHERE mm.member_no = p.member_no),
       (SELECT {join}(DISTINCT substr(md.day, 1, 7){sep}) FROM member_days md
        WHERE md.member_no = p.member_no AND md.records > 0),
       (SELECT u.county_code FROM members m JOIN villages v ON v.code = m.village_code
        JOIN units u ON u.code = v.unit_code WHERE m.member_no = p.member_no)
FROM (SELECT member_no, mark FROM months_pending ORDER BY member_no LIMIT :limit) p
ORDER BY p.member_no
"""
_PENDING_BY_ENGINE = {
    "sqlite": text(_PENDING.format(join="group_concat", sep="")),
    "postgresql": text(_PENDING.format(join="string_agg", sep=", ','")),
}
# Members who were trained but are not counted in their village's county.
_MOVED = text("""
SELECT m.member_no FROM members m JOIN villages v ON v.code = m.village_code
JOIN units u ON u.code = v.unit_code
WHERE m.member_no IN :numbers
  AND EXISTS (SELECT 1 FROM member_days md WHERE md.member_no = m.member_no AND md.records > 0)
  AND NOT EXISTS (SELECT 1 FROM member_months mm
                  WHERE mm.member_no = m.member_no AND mm.county_code = u.county_code)
""").bindparams(bindparam("numbers", expanding=True))
_FORGET = text("DELETE FROM member_months WHERE member_no = :member_no AND month = :month")
_REMEMBER = text("INSERT INTO member_months (member_no, month, county_code) "
                 "VALUES (:member_no, :month, :county_code)")
_ADD = text(
    "INSERT INTO county_months (county_code, month, previous, members) "
    "VALUES (:county_code, :month, :previous, :members) "
    "ON CONFLICT (county_code, month, previous) DO UPDATE SET "
    "members = county_months.members + excluded.members"
)

_ROLLED = text("""
SELECT county_code, SUM(members) FROM county_months
WHERE month >= :first_month AND month <= :last_month AND previous < :first_month
GROUP BY county_code
""")
# Members counted above for a day of the first or last month outside the period only.
_CUT_OFF = text("""
SELECT mm.county_code, COUNT(DISTINCT e.member_no) FROM member_days e
JOIN member_months mm ON mm.member_no = e.member_no AND mm.month = substr(e.day, 1, 7)
WHERE e.records > 0
  AND ((e.day >= :month_start AND e.day < :first) OR (e.day > :last AND e.day <= :month_end))
  AND NOT EXISTS (SELECT 1 FROM member_days md WHERE md.member_no = e.member_no
                  AND md.day >= :first AND md.day <= :last AND md.records > 0)
GROUP BY mm.county_code
""")

_REBUILD = (
    "DELETE FROM member_months",
    "DELETE FROM county_months",
    "DELETE FROM months_pending",
    """INSERT INTO member_months (member_no, month, county_code)
SELECT md.member_no, substr(md.day, 1, 7), u.county_code FROM member_days md
JOIN members m ON m.member_no = md.member_no JOIN villages v ON v.code = m.village_code
JOIN units u ON u.code = v.unit_code
WHERE md.records > 0 AND u.county_code IS NOT NULL
GROUP BY md.member_no, substr(md.day, 1, 7), u.county_code""",
    """INSERT INTO county_months (county_code, month, previous, members)
SELECT county_code, month, previous, COUNT(*) FROM (
    SELECT county_code, month,
           COALESCE(LAG(month) OVER (PARTITION BY member_no ORDER BY month), '') AS previous
    FROM member_months
) c GROUP BY county_code, month, previous""",
)


def _chunks(numbers: Iterable[str]) -> Iterable[list[str]]:
    pending = iter(numbers)
    while chunk := list(islice(pending, _CHUNK)):
        yield chunk


def mark(conn: Connection, member_nos: Iterable[str]) -> None:
    """Mark these members for the next fold (their months or county may have changed)."""
    executemany(conn, _MARK, [{"member_no": n} for n in sorted(set(member_nos))])


def mark_new(conn: Connection, trained: Iterable[tuple[str, str]]) -> None:
    """Mark the members of these (member_no, day) pairs whose month ("YYYY-MM" of the
    day) is not yet folded: days added to a month already counted change nothing."""
    months: dict[str, set[str]] = {}
    for member_no, day in trained:
        months.setdefault(member_no, set()).add(day[:7])
    for chunk in _chunks(sorted(months)):
        for member_no, month, _ in conn.execute(_FOLDED, {"numbers": chunk}):
            months[member_no].discard(month)
    mark(conn, (n for n, left in months.items() if left))


def mark_moved(conn: Connection, member_nos: Iterable[str]) -> None:
    """Mark those of these members who were trained and are not counted in the county
    of their village (new to the roster, or moved): after a roster change."""
    for chunk in _chunks(member_nos):
        mark(conn, conn.execute(_MOVED, {"numbers": chunk}).scalars())


def _chain(county: str | None, months: list[str]) -> list[tuple[str, str, str]]:
    """The county rows one member counts in: (county, month, previous month or '')."""
    if county is None or not months:
        return []
    return [(county, month, previous) for previous, month in zip(["", *months[:-1]], months, strict=True)]


def fold(conn: Connection, limit: int = FOLD_LIMIT) -> int:
    """Bring up to `limit` marked members' months and county into the county rows;
    returns how many were marked. A member marked again while this runs stays marked."""
    conn.execute(text("UPDATE meta SET value = value WHERE key = :key"), {"key": _FOLD_KEY})
    pending = conn.execute(_PENDING_BY_ENGINE[conn.dialect.name], {"limit": limit}).all()
    delta: Counter[tuple[str, str, str]] = Counter()
    gone: list[dict[str, str]] = []
    added: list[dict[str, str]] = []
    for member_no, _, folded, folded_county, months, county in pending:
        was = (folded_county, sorted(folded.split(","))) if folded else (None, [])
        trained = sorted(months.split(",")) if months and county is not None else []
        now = (county if trained else None, trained)
        if was == now:
            continue
        delta.subtract(_chain(*was))
        delta.update(_chain(*now))
        # the member's rows: only those that changed (a new month is one row)
        kept = set(trained) if was[0] == now[0] else set()
        gone += [{"member_no": member_no, "month": m} for m in was[1] if m not in kept]
        kept = set(was[1]) if was[0] == now[0] else set()
        added += [{"member_no": member_no, "month": m, "county_code": str(county)}
                  for m in trained if m not in kept]
    executemany(conn, _FORGET, gone)
    executemany(conn, _REMEMBER, added)
    executemany(conn, _ADD, [
        {"county_code": c, "month": m, "previous": p, "members": n}
        for (c, m, p), n in sorted(delta.items()) if n
    ])
    if delta:
        conn.execute(text("DELETE FROM county_months WHERE members = 0"))
    executemany(conn, text("DELETE FROM months_pending WHERE member_no = :member_no AND mark = :mark"),
                [{"member_no": n, "mark": m} for n, m, *_ in pending])
    return len(pending)


async def fold_all(db: Database) -> int:
    """Fold every marked member, FOLD_LIMIT per write; returns how many. Nothing is
    written when no member is marked (the usual minute)."""
    total = 0
    if await db.read(lambda c: c.execute(text("SELECT 1 FROM months_pending LIMIT 1")).first()) is None:
        return 0
    while True:
        folded = await db.write(fold)
        total += folded
        if folded < FOLD_LIMIT:
            return total


def rebuild(conn: Connection) -> None:
    """Recompute both tables from the member-day roll-up and the roster, in SQL."""
    for statement in _REBUILD:
        conn.execute(text(statement))


def trained_by_county(conn: Connection, first_day: str, last_day: str) -> dict[str, int]:
    """Members trained on some county day of [first_day, last_day] ("YYYY-MM-DD", both
    included), per county code, as of the last fold."""
    first_month, last_month = first_day[:7], last_day[:7]
    trained = Counter({c: int(n) for c, n in conn.execute(
        _ROLLED, {"first_month": first_month, "last_month": last_month})})
    trained.subtract({c: int(n) for c, n in conn.execute(_CUT_OFF, {
        "first": first_day, "last": last_day,
        "month_start": f"{first_month}-01", "month_end": f"{last_month}-31"})})
    return dict(trained)

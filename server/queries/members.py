"""The member roster per village."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

from sqlalchemy import Connection, bindparam, text

from server.queries import in_county, trained_months
from server.roster import MemberRow
from shared.protocol import Member

# Member numbers are digits in every roster seen, so they sort as numbers; anything else
# sorts as 0, as SQLite's CAST made it. Eighteen digits still fit a 64-bit integer.
_NUMBER = (
    "CASE WHEN {col} <> '' AND trim({col}, '0123456789') = '' AND length({col}) <= 18 "
    "THEN CAST({col} AS BIGINT) ELSE 0 END"
)

_VILLAGE_CODES = text(
    "SELECT v.code FROM villages v JOIN units u ON u.code = v.unit_code "
    f"WHERE {in_county('u.county_code')}"
)
# Which of these member numbers are members of a village outside the county.
_ELSEWHERE = text(
    "SELECT m.member_no FROM members m JOIN villages v ON v.code = m.village_code "
    "JOIN units u ON u.code = v.unit_code "
    "WHERE m.member_no IN :numbers AND (u.county_code IS NULL OR u.county_code <> :county)"
).bindparams(bindparam("numbers", expanding=True))
_COUNT = text("SELECT COUNT(*) FROM members")
_UPSERT = text(
    "INSERT INTO members (member_no, village_code, name, sex, ethnicity, born, joined, branch, "
    "category, phone, updated_at) VALUES (:member_no, :village_code, :name, :sex, :ethnicity, "
    ":born, :joined, :branch, :category, :phone, :updated_at) "
    "ON CONFLICT (member_no) DO UPDATE SET village_code = excluded.village_code, "
    "name = excluded.name, sex = excluded.sex, ethnicity = excluded.ethnicity, "
    "born = excluded.born, joined = excluded.joined, branch = excluded.branch, "
    "category = excluded.category, phone = excluded.phone, updated_at = excluded.updated_at"
)
_ROSTER = text(
    "SELECT member_no, name, sex, branch, category FROM members WHERE village_code = :village "
    f"ORDER BY {_NUMBER.format(col='member_no')}, member_no"
)
_MEMBER = text(
    "SELECT m.member_no, m.name, m.village_code, v.name FROM members m JOIN villages v "
    "ON v.code = m.village_code JOIN units u ON u.code = v.unit_code "
    f"WHERE m.member_no = :member AND {in_county('u.county_code')}"
)
_SEARCH = text(
    "SELECT m.member_no, m.name, m.village_code, v.name AS village_name, "
    "u.name AS unit_name, m.branch FROM members m JOIN villages v ON v.code = m.village_code "
    "JOIN units u ON u.code = v.unit_code "
    "WHERE (lower(m.member_no) LIKE lower(:prefix) ESCAPE '\\' "
    "OR lower(m.name) LIKE lower(:part) ESCAPE '\\') "
    f"AND {in_county('u.county_code')} "
    "ORDER BY CASE WHEN m.name = :text THEN 0 ELSE 1 END, "
    "CASE WHEN m.member_no = :text THEN 0 ELSE 1 END, "
    f"{_NUMBER.format(col='m.member_no')}, m.member_no LIMIT :limit"
)
_BATCH = 1000  # members per executemany: the stream is never held whole


def village_codes(conn: Connection, county: str | None = None) -> set[str]:
    """The codes of the villages of `county` (None: of the province)."""
    return set(conn.execute(_VILLAGE_CODES, {"county": county}).scalars())


def elsewhere(conn: Connection, numbers: Iterable[str], county: str) -> set[str]:
    """Which of these member numbers belong to members of a village outside `county`."""
    found: set[str] = set()
    pending = iter(numbers)
    while batch := list(islice(pending, 500)):
        found.update(conn.execute(_ELSEWHERE, {"numbers": batch, "county": county}).scalars())
    return found


def count(conn: Connection) -> int:
    return int(conn.execute(_COUNT).scalar_one())


def upsert_stream(conn: Connection, rows: Iterable[MemberRow], now: str) -> int:
    """Insert or update members by number (the caller's transaction); returns how many.
    Trained members who come to another county are marked for the trained-month fold."""
    count = 0
    members = iter(rows)
    while batch := [
        {"member_no": m.member_no, "village_code": m.village_code, "name": m.name, "sex": m.sex,
         "ethnicity": m.ethnicity, "born": m.born, "joined": m.joined, "branch": m.branch,
         "category": m.category, "phone": m.phone, "updated_at": now}
        for m in islice(members, _BATCH)
    ]:
        conn.execute(_UPSERT, batch)
        trained_months.mark_moved(conn, (str(m["member_no"]) for m in batch))
        count += len(batch)
    return count


def roster(conn: Connection, village_code: str) -> list[Member]:
    return [
        Member(member_no=r.member_no, name=r.name, sex=r.sex, branch=r.branch, category=r.category)
        for r in conn.execute(_ROSTER, {"village": village_code})
    ]


@dataclass(frozen=True)
class MemberRef:
    """A member by number, with name and village."""

    member_no: str
    name: str
    village_code: str
    village_name: str


@dataclass(frozen=True)
class MemberMatchRow:
    member_no: str
    name: str
    village_code: str
    village_name: str
    unit_name: str
    branch: str


def member(conn: Connection, member_no: str, county: str | None = None) -> MemberRef | None:
    """The member numbered `member_no`, when a member of `county` (None: the province)."""
    row = conn.execute(_MEMBER, {"member": member_no, "county": county}).first()
    return None if row is None else MemberRef(*row)


def search(conn: Connection, query: str, limit: int, county: str | None = None
           ) -> list[MemberMatchRow]:
    """Members of `county` (None: the province) whose number starts with `query` or whose
    name contains it (ASCII letters in either case); at most `limit`, exact name then
    exact number first."""
    like = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return [MemberMatchRow(*r) for r in conn.execute(
        _SEARCH, {"prefix": like + "%", "part": "%" + like + "%", "text": query, "limit": int(limit),
                   "county": county},
    )]

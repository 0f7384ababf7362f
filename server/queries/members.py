"""The member roster per village."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from server.roster import MemberRow
from shared.protocol import Member


def village_codes(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT code FROM villages")}


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM members").fetchone()[0])


def upsert_stream(conn: sqlite3.Connection, rows: Iterable[MemberRow], now: str) -> int:
    """Insert or update members by number (the caller's transaction); returns how many."""
    count = 0

    def values() -> Iterator[tuple[object, ...]]:
        nonlocal count
        for m in rows:
            count += 1
            yield (m.member_no, m.village_code, m.name, m.sex, m.ethnicity, m.born, m.joined,
                   m.branch, m.category, m.phone, now)

    conn.executemany(
        "INSERT INTO members (member_no, village_code, name, sex, ethnicity, born, joined, branch, "
        "category, phone, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(member_no) DO UPDATE SET village_code = excluded.village_code, "
        "name = excluded.name, sex = excluded.sex, ethnicity = excluded.ethnicity, "
        "born = excluded.born, joined = excluded.joined, branch = excluded.branch, "
        "category = excluded.category, phone = excluded.phone, updated_at = excluded.updated_at",
        values(),
    )
    return count


def roster(conn: sqlite3.Connection, village_code: str) -> list[Member]:
    return [
        Member(member_no=r[0], name=r[1], sex=r[2], branch=r[3], category=r[4])
        for r in conn.execute(
            "SELECT member_no, name, sex, branch, category FROM members WHERE village_code = ? "
            "ORDER BY CAST(member_no AS INTEGER), member_no", (village_code,),
        )
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


def member(conn: sqlite3.Connection, member_no: str) -> MemberRef | None:
    row = conn.execute(
        "SELECT m.member_no, m.name, m.village_code, v.name FROM members m JOIN villages v "
        "ON v.code = m.village_code WHERE member_no = ?", (member_no,),
    ).fetchone()
    return None if row is None else MemberRef(*row)


def search(conn: sqlite3.Connection, text: str, limit: int) -> list[MemberMatchRow]:
    """Members whose number starts with `text` or whose name contains it; at most `limit`."""
    like = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return [MemberMatchRow(*r) for r in conn.execute(
        "SELECT m.member_no, m.name, m.village_code, v.name AS village_name, "
        "u.name AS unit_name, m.branch FROM members m JOIN villages v ON v.code = m.village_code "
        "JOIN units u ON u.code = v.unit_code "
        "WHERE m.member_no LIKE ? ESCAPE '\\' OR m.name LIKE ? ESCAPE '\\' "
        "ORDER BY m.name = ? DESC, m.member_no = ? DESC, CAST(m.member_no AS INTEGER) LIMIT ?",
        (like + "%", "%" + like + "%", text, text, limit),
    )]

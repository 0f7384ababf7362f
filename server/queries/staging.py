"""The throwaway SQLite file a roster import stages its accepted rows in (see
`server.roster.check`): one table `staged`, keyed by member number."""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from server.roster import MemberRow


def _uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(path.resolve()))


class Staging:
    """The accepted rows of one roster, by member number, in a throwaway SQLite file:
    the duplicate check asks it which line a number was first on, and `store()` reads
    the members from it. 200,000 rows cost a few MB of page cache, not a dict's tens of
    MB."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(_uri(path), uri=True)
        self._conn.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-4096;"
            "DROP TABLE IF EXISTS staged;"
            "CREATE TABLE staged (member_no TEXT PRIMARY KEY, line INTEGER, village_code TEXT, "
            "name TEXT, sex TEXT, ethnicity TEXT, born TEXT, joined TEXT, branch TEXT, "
            "category TEXT, phone TEXT) WITHOUT ROWID;")

    def line(self, member_no: str) -> int | None:
        row = self._conn.execute("SELECT line FROM staged WHERE member_no = ?", (member_no,)).fetchone()
        return None if row is None else int(row[0])

    def add(self, m: MemberRow, line: int) -> None:
        self._conn.execute(
            "INSERT INTO staged VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (m.member_no, line, m.village_code, m.name, m.sex, m.ethnicity, m.born, m.joined,
             m.branch, m.category, m.phone))

    def close(self) -> None:
        self._conn.commit()
        self._conn.close()


def staged_members(path: Path) -> Iterator[MemberRow]:
    """The rows `check()` staged in `path` (blocking, streaming)."""
    conn = sqlite3.connect(_uri(path) + "?mode=ro", uri=True)
    try:
        for r in conn.execute(
            "SELECT member_no, name, village_code, sex, ethnicity, born, joined, branch, category, "
            "phone FROM staged"
        ):
            yield MemberRow(*r)
    finally:
        conn.close()

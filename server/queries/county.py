"""Townships, villages and terminals: the shape of the county."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from shared.timeutil import to_db, utcnow

CATALOG_VERSION_KEY = "catalog_version"


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    kind: str


@dataclass(frozen=True)
class Village:
    code: str
    name: str
    unit_code: str
    kind: str
    terrain: str


def bump_catalog_version(conn: sqlite3.Connection) -> int:
    """Any change that can alter a terminal's catalog moves the version on."""
    row = conn.execute(
        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ? RETURNING value",
        (CATALOG_VERSION_KEY,),
    ).fetchone()
    return int(row[0])


def catalog_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (CATALOG_VERSION_KEY,)).fetchone()
    return int(row[0])


def upsert_units(conn: sqlite3.Connection, units: Iterable[Unit]) -> int:
    rows = [(u.code, u.name, u.kind) for u in units]
    conn.executemany(
        "INSERT INTO units (code, name, kind) VALUES (?, ?, ?) "
        "ON CONFLICT(code) DO UPDATE SET name = excluded.name, kind = excluded.kind",
        rows,
    )
    return len(rows)


def upsert_villages(conn: sqlite3.Connection, villages: Iterable[Village]) -> int:
    rows = [(v.code, v.name, v.unit_code, v.kind, v.terrain) for v in villages]
    conn.executemany(
        "INSERT INTO villages (code, name, unit_code, kind, terrain) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(code) DO UPDATE SET name = excluded.name, unit_code = excluded.unit_code, "
        "kind = excluded.kind, terrain = excluded.terrain",
        rows,
    )
    bump_catalog_version(conn)
    return len(rows)


def terminal_id_for(village_code: str) -> str:
    """The id of a village's (first) terminal point."""
    return f"T{village_code}"


def add_terminal(conn: sqlite3.Connection, terminal_id: str, village_code: str, name: str) -> bool:
    """Register a terminal point; False if that id exists already."""
    cur = conn.execute(
        "INSERT INTO terminals (id, village_code, name, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(id) DO NOTHING",
        (terminal_id, village_code, name, to_db(utcnow())),
    )
    return cur.rowcount == 1


@dataclass(frozen=True)
class UnitRow:
    """A town, township or subdistrict, with how many villages it has."""

    code: str
    name: str
    kind: str
    villages: int


@dataclass(frozen=True)
class VillageRow:
    """A village or community, its unit, and how many members and terminals it has."""

    code: str
    name: str
    unit_code: str
    unit_name: str
    kind: str
    terrain: str
    members: int
    terminals: int


@dataclass(frozen=True)
class VillageRef:
    code: str
    name: str
    unit_code: str
    unit_name: str


@dataclass(frozen=True)
class TerminalRow:
    """A terminal point and where it stands."""

    id: str
    name: str
    village_code: str
    village_name: str
    unit_code: str
    public_key: str | None  # its own Ed25519 key (base64), when it enrolled with one


def list_units(conn: sqlite3.Connection) -> list[UnitRow]:
    rows = conn.execute(
        "SELECT u.code, u.name, u.kind, COUNT(v.code) AS villages FROM units u "
        "LEFT JOIN villages v ON v.unit_code = u.code GROUP BY u.code ORDER BY u.code"
    )
    return [UnitRow(*r) for r in rows]


def list_villages(conn: sqlite3.Connection, unit_code: str | None = None) -> list[VillageRow]:
    sql = (
        "SELECT v.code, v.name, v.unit_code, u.name AS unit_name, v.kind, v.terrain, "
        "(SELECT COUNT(*) FROM members m WHERE m.village_code = v.code) AS members, "
        "(SELECT COUNT(*) FROM terminals t WHERE t.village_code = v.code) AS terminals "
        "FROM villages v JOIN units u ON u.code = v.unit_code"
    )
    args: tuple[str, ...] = ()
    if unit_code is not None:
        sql += " WHERE v.unit_code = ?"
        args = (unit_code,)
    return [VillageRow(*r) for r in conn.execute(sql + " ORDER BY v.code", args)]


def village(conn: sqlite3.Connection, code: str) -> VillageRef | None:
    row = conn.execute(
        "SELECT v.code, v.name, v.unit_code, u.name FROM villages v "
        "JOIN units u ON u.code = v.unit_code WHERE v.code = ?", (code,)
    ).fetchone()
    return None if row is None else VillageRef(*row)


def unit_exists(conn: sqlite3.Connection, code: str) -> bool:
    return conn.execute("SELECT 1 FROM units WHERE code = ?", (code,)).fetchone() is not None


def terminal(conn: sqlite3.Connection, terminal_id: str) -> TerminalRow | None:
    row = conn.execute(
        "SELECT t.id, t.name, t.village_code, v.name, v.unit_code, t.public_key FROM terminals t "
        "JOIN villages v ON v.code = t.village_code WHERE t.id = ?", (terminal_id,)
    ).fetchone()
    return None if row is None else TerminalRow(*row)


def terminal_village_codes(conn: sqlite3.Connection) -> list[str]:
    """The villages that have a terminal point, by code."""
    return [r[0] for r in conn.execute("SELECT village_code FROM terminals ORDER BY village_code")]

"""Townships, villages and terminals: the shape of the county."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, text

from server.db import after_commit, executemany
from server.queries import in_county
from shared.timeutil import to_db, utcnow

CATALOG_VERSION_KEY = "catalog_version"

# True when the unit aliased `u` lies in the county bound as `:county` (or for the province).
IN_COUNTY = in_county("u.county_code")


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


_BUMP = text(
    "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = :key "
    "RETURNING value"
)
_VERSION = text("SELECT value FROM meta WHERE key = :key")
_UPSERT_UNIT = text(
    "INSERT INTO units (code, name, kind, county_code) VALUES (:code, :name, :kind, :county) "
    "ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind, "
    "county_code = excluded.county_code"
)
_ADD_COUNTY = text("INSERT INTO counties (code) VALUES (:county) ON CONFLICT (code) DO NOTHING")
_NAME_COUNTY = text("UPDATE counties SET name = :name WHERE code = :code")
_UPSERT_VILLAGE = text(
    "INSERT INTO villages (code, name, unit_code, kind, terrain) "
    "VALUES (:code, :name, :unit_code, :kind, :terrain) "
    "ON CONFLICT (code) DO UPDATE SET name = excluded.name, unit_code = excluded.unit_code, "
    "kind = excluded.kind, terrain = excluded.terrain"
)
_ADD_TERMINAL = text(
    "INSERT INTO terminals (id, village_code, name, created_at) "
    "VALUES (:id, :village, :name, :now) ON CONFLICT (id) DO NOTHING"
)


class _Bumps:
    """How many times this process committed a catalog version bump (for
    `server.catalog.CatalogMemo`, which then reads the version again at once)."""

    count = 0

    @classmethod
    def add(cls) -> None:
        cls.count += 1


def bumps_here() -> int:
    return _Bumps.count


def bump_catalog_version(conn: Connection) -> int:
    """Any change that can alter a terminal's catalog moves the version on."""
    after_commit(conn, _Bumps.add)
    return int(conn.execute(_BUMP, {"key": CATALOG_VERSION_KEY}).scalar_one())


def catalog_version(conn: Connection) -> int:
    return int(conn.execute(_VERSION, {"key": CATALOG_VERSION_KEY}).scalar_one())


def county_of(unit_code: str) -> str:
    """The county a unit belongs to: the first six characters of its code (GB/T 2260
    division codes: a township's nine digits begin with its county's six)."""
    return unit_code[:6]


def upsert_units(conn: Connection, units: Iterable[Unit]) -> int:
    """Add or update units; each joins the county its code names (added if new)."""
    rows = [{"code": u.code, "name": u.name, "kind": u.kind, "county": county_of(u.code)}
            for u in units]
    if rows:
        executemany(conn, _ADD_COUNTY, [{"county": c} for c in sorted({r["county"] for r in rows})])
        conn.execute(_UPSERT_UNIT, rows)
    return len(rows)


_SUMMARY = text(
    "SELECT (SELECT COUNT(*) FROM counties), "
    "(SELECT name FROM counties WHERE code = CAST(:county AS TEXT))"
)


def summary(conn: Connection, county: str | None) -> tuple[int, str]:
    """How many counties the server holds, and the name of `county` ("" if unnamed)."""
    count, name = conn.execute(_SUMMARY, {"county": county}).one()
    return max(1, int(count)), str(name or "")


def county_label(conn: Connection, code: str) -> str:
    """A county as a person reads it: its name (清徐县), or 县 <code> while unnamed."""
    return summary(conn, code)[1] or f"县 {code}"


def counties(conn: Connection) -> list[tuple[str, str]]:
    """Every county held: (code, name), by code."""
    return [(str(c), str(n)) for c, n in conn.execute(text("SELECT code, name FROM counties ORDER BY code"))]


def name_county(conn: Connection, code: str, name: str) -> bool:
    """Give a county its name; False when no unit of that county is known."""
    return conn.execute(_NAME_COUNTY, {"code": code, "name": name}).rowcount == 1


def upsert_villages(conn: Connection, villages: Iterable[Village]) -> int:
    rows = [{"code": v.code, "name": v.name, "unit_code": v.unit_code, "kind": v.kind,
             "terrain": v.terrain} for v in villages]
    if rows:
        conn.execute(_UPSERT_VILLAGE, rows)
    bump_catalog_version(conn)
    return len(rows)


def terminal_id_for(village_code: str) -> str:
    """The id of a village's (first) terminal point."""
    return f"T{village_code}"


def add_terminal(conn: Connection, terminal_id: str, village_code: str, name: str) -> bool:
    """Register a terminal point; False if that id exists already."""
    cur = conn.execute(_ADD_TERMINAL, {"id": terminal_id, "village": village_code, "name": name,
                                       "now": to_db(utcnow())})
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


_UNITS = text(
    "SELECT u.code, u.name, u.kind, COUNT(v.code) AS villages FROM units u "
    f"LEFT JOIN villages v ON v.unit_code = u.code WHERE {IN_COUNTY} "
    "GROUP BY u.code, u.name, u.kind ORDER BY u.code"
)
_VILLAGES = (
    "SELECT v.code, v.name, v.unit_code, u.name AS unit_name, v.kind, v.terrain, "
    "(SELECT COUNT(*) FROM members m WHERE m.village_code = v.code) AS members, "
    "(SELECT COUNT(*) FROM terminals t WHERE t.village_code = v.code) AS terminals "
    f"FROM villages v JOIN units u ON u.code = v.unit_code WHERE {IN_COUNTY}"
)
_ALL_VILLAGES = text(_VILLAGES + " ORDER BY v.code")
_UNIT_VILLAGES = text(_VILLAGES + " AND v.unit_code = :unit ORDER BY v.code")
_VILLAGE = text(
    "SELECT v.code, v.name, v.unit_code, u.name FROM villages v "
    f"JOIN units u ON u.code = v.unit_code WHERE v.code = :code AND {IN_COUNTY}"
)
_VILLAGES_IN_COUNTY = text(
    "SELECT v.code FROM villages v JOIN units u ON u.code = v.unit_code "
    f"WHERE v.code IN :codes AND {IN_COUNTY}"
).bindparams(bindparam("codes", expanding=True))
_UNIT_EXISTS = text(f"SELECT 1 FROM units u WHERE u.code = :code AND {IN_COUNTY}")
_TERMINAL = text(
    "SELECT t.id, t.name, t.village_code, v.name, v.unit_code, t.public_key FROM terminals t "
    "JOIN villages v ON v.code = t.village_code JOIN units u ON u.code = v.unit_code "
    f"WHERE t.id = :id AND {IN_COUNTY}"
)
_COUNTY_TERMINALS = text(
    "SELECT t.id FROM terminals t JOIN villages v ON v.code = t.village_code "
    "JOIN units u ON u.code = v.unit_code WHERE u.county_code = :county"
)
_TERMINAL_VILLAGES = text("SELECT village_code FROM terminals ORDER BY village_code")


# In the functions below `county` None means every county (the province's account); a
# county code keeps the answer inside that county: a thing of another county is not found.


def list_units(conn: Connection, county: str | None = None) -> list[UnitRow]:
    return [UnitRow(*r) for r in conn.execute(_UNITS, {"county": county})]


def list_villages(conn: Connection, unit_code: str | None = None,
                  county: str | None = None) -> list[VillageRow]:
    if unit_code is None:
        return [VillageRow(*r) for r in conn.execute(_ALL_VILLAGES, {"county": county})]
    return [VillageRow(*r)
            for r in conn.execute(_UNIT_VILLAGES, {"unit": unit_code, "county": county})]


def village(conn: Connection, code: str, county: str | None = None) -> VillageRef | None:
    row = conn.execute(_VILLAGE, {"code": code, "county": county}).first()
    return None if row is None else VillageRef(*row)


def villages_in_county(conn: Connection, codes: Sequence[str], county: str | None) -> set[str]:
    """Those of `codes` that are villages (of `county`, when one is given)."""
    if not codes:
        return set()
    return set(conn.execute(_VILLAGES_IN_COUNTY, {"codes": list(codes), "county": county})
               .scalars())


def unit_exists(conn: Connection, code: str, county: str | None = None) -> bool:
    return conn.execute(_UNIT_EXISTS, {"code": code, "county": county}).first() is not None


def terminal(conn: Connection, terminal_id: str, county: str | None = None) -> TerminalRow | None:
    row = conn.execute(_TERMINAL, {"id": terminal_id, "county": county}).first()
    return None if row is None else TerminalRow(*row)


def county_terminals(conn: Connection, county: str) -> set[str]:
    """The ids of every terminal point of `county`."""
    return set(conn.execute(_COUNTY_TERMINALS, {"county": county}).scalars())


def terminal_village_codes(conn: Connection) -> list[str]:
    """The villages that have a terminal point, by code."""
    return list(conn.execute(_TERMINAL_VILLAGES).scalars())

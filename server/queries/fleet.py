"""Heartbeats, fleet status and session readiness."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

import msgspec

from shared.protocol import Heartbeat
from shared.timeutil import to_db


def record_heartbeat(
    conn: sqlite3.Connection, terminal_id: str, hb: Heartbeat, seen_at: datetime, address: str | None
) -> None:
    conn.execute(
        "UPDATE terminals SET last_seen = ?, last_address = ?, heartbeat = ? WHERE id = ?",
        (to_db(seen_at), address, msgspec.json.encode(hb).decode(), terminal_id),
    )
    conn.execute("DELETE FROM terminal_items WHERE terminal_id = ?", (terminal_id,))
    conn.executemany(
        "INSERT OR REPLACE INTO terminal_items (terminal_id, sha256, state, bytes_present, bytes_from_peers) "
        "VALUES (?, ?, ?, ?, ?)",
        [(terminal_id, c.sha256, c.state, c.bytes_present, c.bytes_from_peers) for c in hb.cache],
    )


@dataclass(frozen=True)
class FleetRow:
    """A terminal point as the fleet view shows it: times are RFC 3339 UTC text,
    `heartbeat` the last one as JSON, `ready_items` how many items it holds verified."""

    id: str
    name: str
    village_code: str
    village_name: str
    unit_code: str
    unit_name: str
    terrain: str
    last_seen: str | None
    last_address: str | None
    heartbeat: str | None
    enrolled_at: str | None
    revoked_at: str | None
    last_usb_contact: str | None  # when it last answered by USB stick
    ready_items: int


@dataclass(frozen=True)
class UpcomingSession:
    id: str
    title: str
    starts_at: str


@dataclass(frozen=True)
class NeededItem:
    sha256: str
    title: str


@dataclass(frozen=True)
class SessionTerminal:
    id: str
    village_code: str
    village_name: str


def fleet_rows(conn: sqlite3.Connection) -> list[FleetRow]:
    return [FleetRow(*r) for r in conn.execute(
        "SELECT t.id, t.name, t.village_code, v.name AS village_name, v.unit_code, "
        "u.name AS unit_name, v.terrain, t.last_seen, t.last_address, t.heartbeat, "
        "t.enrolled_at, t.revoked_at, t.last_usb_contact, "
        "(SELECT COUNT(*) FROM terminal_items i WHERE i.terminal_id = t.id AND i.state = 'ready') "
        "AS ready_items "
        "FROM terminals t JOIN villages v ON v.code = t.village_code "
        "JOIN units u ON u.code = v.unit_code ORDER BY t.id"
    )]


def upcoming_sessions(conn: sqlite3.Connection, since: datetime) -> list[UpcomingSession]:
    return [UpcomingSession(*r) for r in conn.execute(
        "SELECT id, title, starts_at FROM sessions WHERE starts_at >= ? ORDER BY starts_at, id",
        (to_db(since),),
    )]


def session_needs(conn: sqlite3.Connection, session_id: str) -> list[NeededItem]:
    return [NeededItem(*r) for r in conn.execute(
        "SELECT c.sha256, c.title FROM session_items si JOIN contents c ON c.id = si.content_id "
        "WHERE si.session_id = ? ORDER BY si.position", (session_id,),
    )]


def session_terminals(conn: sqlite3.Connection, session_id: str) -> list[SessionTerminal]:
    return [SessionTerminal(*r) for r in conn.execute(
        "SELECT t.id, t.village_code, v.name AS village_name FROM session_villages sv "
        "JOIN terminals t ON t.village_code = sv.village_code "
        "JOIN villages v ON v.code = t.village_code WHERE sv.session_id = ? ORDER BY t.id",
        (session_id,),
    )]


def ready_hashes(conn: sqlite3.Connection, terminal_id: str) -> set[str]:
    return {
        r[0] for r in conn.execute(
            "SELECT sha256 FROM terminal_items WHERE terminal_id = ? AND state = 'ready'",
            (terminal_id,),
        )
    }

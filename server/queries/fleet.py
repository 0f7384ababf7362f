"""Heartbeats, fleet status and session readiness."""

from __future__ import annotations

import sqlite3
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


def fleet_rows(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT t.id, t.name, t.village_code, v.name AS village_name, v.unit_code, "
        "u.name AS unit_name, v.terrain, t.last_seen, t.last_address, t.heartbeat, "
        "t.enrolled_at, t.revoked_at, t.last_usb_contact, "
        "(SELECT COUNT(*) FROM terminal_items i WHERE i.terminal_id = t.id AND i.state = 'ready') "
        "AS ready_items "
        "FROM terminals t JOIN villages v ON v.code = t.village_code "
        "JOIN units u ON u.code = v.unit_code ORDER BY t.id"
    ).fetchall()


def upcoming_sessions(conn: sqlite3.Connection, since: datetime) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT id, title, starts_at FROM sessions WHERE starts_at >= ? ORDER BY starts_at, id",
        (to_db(since),),
    ).fetchall()


def session_needs(conn: sqlite3.Connection, session_id: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT c.sha256, c.title FROM session_items si JOIN contents c ON c.id = si.content_id "
        "WHERE si.session_id = ? ORDER BY si.position", (session_id,),
    ).fetchall()


def session_terminals(conn: sqlite3.Connection, session_id: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT t.id, t.village_code, v.name AS village_name FROM session_villages sv "
        "JOIN terminals t ON t.village_code = sv.village_code "
        "JOIN villages v ON v.code = t.village_code WHERE sv.session_id = ? ORDER BY t.id",
        (session_id,),
    ).fetchall()


def ready_hashes(conn: sqlite3.Connection, terminal_id: str) -> set[str]:
    return {
        r[0] for r in conn.execute(
            "SELECT sha256 FROM terminal_items WHERE terminal_id = ? AND state = 'ready'",
            (terminal_id,),
        )
    }

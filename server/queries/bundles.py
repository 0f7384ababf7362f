"""Choosing the terminals a USB bundle is for, and recording what came back by stick."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

import msgspec

from shared.protocol import Heartbeat
from shared.timeutil import to_db

_TERMINALS = (
    "SELECT t.id, t.village_code, v.unit_code, t.enrolled_at, t.revoked_at, t.last_seen "
    "FROM terminals t JOIN villages v ON v.code = t.village_code"
)


def select_terminals(
    conn: sqlite3.Connection, *, township: str | None, terminal_ids: Sequence[str],
    offline_before: datetime | None,
) -> tuple[list[sqlite3.Row], dict[str, str]]:
    """(enrolled terminals chosen, {id: why left out}) for a township, a list of ids, or
    every terminal not heard from since `offline_before` (never heard counts as offline)."""
    rows: list[sqlite3.Row] = []
    if township is not None:
        rows += conn.execute(_TERMINALS + " WHERE v.unit_code = ? ORDER BY t.id", (township,)).fetchall()
    if terminal_ids:
        found = {r["id"]: r for r in conn.execute(
            _TERMINALS + f" WHERE t.id IN ({','.join('?' * len(terminal_ids))})", list(terminal_ids))}
        rows += [found[i] for i in terminal_ids if i in found]
    if offline_before is not None:
        rows += conn.execute(
            _TERMINALS + " WHERE t.last_seen IS NULL OR t.last_seen < ? ORDER BY t.id",
            (to_db(offline_before),)).fetchall()
    skipped = {i: "unknown terminal" for i in terminal_ids if i not in {r["id"] for r in rows}}
    chosen: dict[str, sqlite3.Row] = {}
    for r in rows:
        if r["enrolled_at"] is None:
            skipped[r["id"]] = "not enrolled: it has no key to check a catalog with"
        elif r["revoked_at"] is not None:
            skipped[r["id"]] = "revoked"
        else:
            chosen.setdefault(r["id"], r)
    return list(chosen.values()), skipped


def public_keys(conn: sqlite3.Connection) -> dict[str, str | None]:
    """Every enrolled, unrevoked terminal's enrolled public key (None when it sent none)."""
    return {r[0]: r[1] for r in conn.execute(
        "SELECT id, public_key FROM terminals WHERE enrolled_at IS NOT NULL AND revoked_at IS NULL")}


def return_known(conn: sqlite3.Connection, digest: str) -> bool:
    return conn.execute("SELECT 1 FROM usb_returns WHERE digest = ?", (digest,)).fetchone() is not None


def record_return(conn: sqlite3.Connection, digest: str, terminal_id: str, kind: str,
                  written_at: datetime, now: datetime) -> None:
    """Note a return file as taken in, and the terminal's last contact by stick."""
    conn.execute(
        "INSERT OR IGNORE INTO usb_returns (digest, terminal_id, kind, written_at, imported_at) "
        "VALUES (?, ?, ?, ?, ?)", (digest, terminal_id, kind, to_db(written_at), to_db(now)))
    conn.execute(
        "UPDATE terminals SET last_usb_contact = ? WHERE id = ? "
        "AND (last_usb_contact IS NULL OR last_usb_contact < ?)",
        (to_db(written_at), terminal_id, to_db(written_at)))


def record_state(conn: sqlite3.Connection, terminal_id: str, state: Heartbeat) -> bool:
    """Take a state carried by stick as the terminal's latest report, unless a newer one
    (by the terminal's clock) is held; `last_seen` stays: the stick is not a link."""
    row = conn.execute("SELECT heartbeat FROM terminals WHERE id = ?", (terminal_id,)).fetchone()
    if row is not None and row[0]:
        held = msgspec.json.decode(row[0], type=Heartbeat)
        if held.terminal_clock >= state.terminal_clock:
            return False
    conn.execute("UPDATE terminals SET heartbeat = ? WHERE id = ?",
                 (msgspec.json.encode(state).decode(), terminal_id))
    conn.execute("DELETE FROM terminal_items WHERE terminal_id = ?", (terminal_id,))
    conn.executemany(
        "INSERT OR REPLACE INTO terminal_items (terminal_id, sha256, state, bytes_present, bytes_from_peers) "
        "VALUES (?, ?, ?, ?, ?)",
        [(terminal_id, c.sha256, c.state, c.bytes_present, c.bytes_from_peers) for c in state.cache])
    return True

"""Peer-fetch leases (`server.peer_leases`) as rows of the key-value `meta` table, so
every server process on the database sees the same holder. A lease is the row
`lease:<lan>:<sha256>` = `<terminal id> <until, seconds since the epoch>`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

PREFIX = "lease:"


def _key(lan: str, sha256: str) -> str:
    return f"{PREFIX}{lan}:{sha256}"


def _put(conn: sqlite3.Connection, key: str, holder: str, until: float) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, f"{holder} {until:.3f}"))


def _all(conn: sqlite3.Connection) -> Iterator[tuple[str, str, float]]:
    # the upper bound lets the primary key's index answer the prefix
    for key, value in conn.execute("SELECT key, value FROM meta WHERE key >= ? AND key < ?",
                                   (PREFIX, PREFIX[:-1] + chr(ord(PREFIX[-1]) + 1))).fetchall():
        holder, _, until = value.partition(" ")
        yield key, holder, float(until)


def claim(conn: sqlite3.Connection, lan: str, sha256: str, terminal_id: str, now: float,
          ttl: float) -> float:
    """0 when `terminal_id` holds (or now takes) the lease, else seconds until it may ask again."""
    key = _key(lan, sha256)
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    if row is not None:
        holder, _, until_text = str(row[0]).partition(" ")
        until = float(until_text)
        if until > now and holder != terminal_id:
            return max(1.0, min(ttl, until - now))
    _put(conn, key, terminal_id, now + ttl)
    return 0.0


def held_by(conn: sqlite3.Connection, terminal_id: str) -> list[str]:
    return [key for key, holder, _ in _all(conn) if holder == terminal_id]


def renew(conn: sqlite3.Connection, terminal_id: str, downloading: set[str], now: float,
          ttl: float) -> None:
    """Keep the terminal's leases of items still downloading, drop its others, and any
    lease expired for longer than `ttl`."""
    for key, holder, until in list(_all(conn)):
        if holder == terminal_id:
            if key.rsplit(":", 1)[1] in downloading:
                _put(conn, key, holder, now + ttl)
            else:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        elif until < now - ttl:
            conn.execute("DELETE FROM meta WHERE key = ?", (key,))

"""The server's own facts in the `meta` table."""

from __future__ import annotations

import sqlite3
import uuid


def server_id(conn: sqlite3.Connection) -> str:
    """This server's id (32 hex digits), made on first start and kept for good."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'server_id'").fetchone()
    if row is not None:
        return str(row[0])
    made = uuid.uuid4().hex
    conn.execute("INSERT INTO meta (key, value) VALUES ('server_id', ?)", (made,))
    return made

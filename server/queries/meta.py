"""The server's own facts in the `meta` table."""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, text

_SERVER_ID = text("SELECT value FROM meta WHERE key = 'server_id'")
_ADD_SERVER_ID = text("INSERT INTO meta (key, value) VALUES ('server_id', :id)")


def server_id(conn: Connection) -> str:
    """This server's id (32 hex digits), made on first start and kept for good."""
    found = conn.execute(_SERVER_ID).scalar_one_or_none()
    if found is not None:
        return str(found)
    made = uuid.uuid4().hex
    conn.execute(_ADD_SERVER_ID, {"id": made})
    return made

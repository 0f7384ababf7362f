"""tus upload state: the offset is recorded after the bytes are fsynced."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from shared.timeutil import from_db, to_db


@dataclass(frozen=True)
class UploadRow:
    """One tus upload: `offset` bytes of `length` are durable; `metadata` is the raw
    Upload-Metadata header; `content_id` is set once the upload became a content."""

    id: str
    length: int
    offset: int
    metadata: str
    created_at: datetime
    expires_at: datetime
    content_id: str | None


def create(
    conn: sqlite3.Connection, upload_id: str, length: int, metadata: str, now: datetime,
    expires: datetime,
) -> None:
    conn.execute(
        "INSERT INTO uploads (id, length, offset, metadata, created_at, expires_at) "
        "VALUES (?, ?, 0, ?, ?, ?)",
        (upload_id, length, metadata, to_db(now), to_db(expires)),
    )


def get(conn: sqlite3.Connection, upload_id: str) -> UploadRow | None:
    row = conn.execute(
        "SELECT id, length, offset, metadata, created_at, expires_at, content_id "
        "FROM uploads WHERE id = ?", (upload_id,)
    ).fetchone()
    if row is None:
        return None
    return UploadRow(
        id=row[0], length=int(row[1]), offset=int(row[2]), metadata=row[3] or "",
        created_at=from_db(row[4]), expires_at=from_db(row[5]), content_id=row[6],
    )


def set_offset(conn: sqlite3.Connection, upload_id: str, offset: int) -> None:
    conn.execute("UPDATE uploads SET offset = ? WHERE id = ?", (offset, upload_id))


def set_offset_after_full_disk(
    conn: sqlite3.Connection, upload_id: str, offset: int, expires: datetime
) -> None:
    """Record the offset a full disk cut the upload back to; it expires no earlier than
    `expires`, so the admin has the full expiry time to free space."""
    conn.execute(
        "UPDATE uploads SET offset = ?, expires_at = MAX(expires_at, ?) WHERE id = ?",
        (offset, to_db(expires), upload_id),
    )


def unfinished_ids(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT id FROM uploads WHERE content_id IS NULL")]


def set_content(conn: sqlite3.Connection, upload_id: str, content_id: str) -> None:
    conn.execute("UPDATE uploads SET content_id = ? WHERE id = ?", (content_id, upload_id))


def delete(conn: sqlite3.Connection, upload_id: str) -> bool:
    return conn.execute("DELETE FROM uploads WHERE id = ?", (upload_id,)).rowcount == 1


def expired(conn: sqlite3.Connection, now: datetime) -> list[str]:
    return [
        r[0] for r in conn.execute(
            "SELECT id FROM uploads WHERE expires_at < ? AND content_id IS NULL", (to_db(now),)
        )
    ]

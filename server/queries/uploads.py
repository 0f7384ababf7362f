"""tus upload state: the offset is recorded after the bytes are fsynced."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

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
    county: str | None = None  # the county whose account made it; None: the province's


# "offset" is quoted: it is a reserved word on PostgreSQL.
_CREATE = text(
    'INSERT INTO uploads (id, length, "offset", metadata, created_at, expires_at, county_code) '
    "VALUES (:id, :length, 0, :metadata, :created_at, :expires_at, :county)"
)
_GET = text(
    'SELECT id, length, "offset", metadata, created_at, expires_at, content_id, county_code '
    "FROM uploads WHERE id = :id"
)
_SET_OFFSET = text('UPDATE uploads SET "offset" = :offset WHERE id = :id')
_SET_OFFSET_AFTER_FULL_DISK = text(
    'UPDATE uploads SET "offset" = :offset, '
    "expires_at = CASE WHEN expires_at > :expires THEN expires_at ELSE :expires END "
    "WHERE id = :id"
)
_UNFINISHED = text("SELECT id FROM uploads WHERE content_id IS NULL")
_SET_CONTENT = text("UPDATE uploads SET content_id = :content_id WHERE id = :id")
_DELETE = text("DELETE FROM uploads WHERE id = :id")
_EXPIRED = text("SELECT id FROM uploads WHERE expires_at < :now AND content_id IS NULL")


def create(
    conn: Connection, upload_id: str, length: int, metadata: str, now: datetime,
    expires: datetime, county: str | None = None,
) -> None:
    conn.execute(_CREATE, {"id": upload_id, "length": length, "metadata": metadata,
                           "created_at": to_db(now), "expires_at": to_db(expires),
                           "county": county})


def get(conn: Connection, upload_id: str) -> UploadRow | None:
    row = conn.execute(_GET, {"id": upload_id}).first()
    if row is None:
        return None
    return UploadRow(
        id=row.id, length=int(row.length), offset=int(row.offset), metadata=row.metadata or "",
        created_at=from_db(row.created_at), expires_at=from_db(row.expires_at),
        content_id=row.content_id, county=row.county_code,
    )


def set_offset(conn: Connection, upload_id: str, offset: int) -> None:
    conn.execute(_SET_OFFSET, {"offset": offset, "id": upload_id})


def set_offset_after_full_disk(
    conn: Connection, upload_id: str, offset: int, expires: datetime
) -> None:
    """Record the offset a full disk cut the upload back to; it expires no earlier than
    `expires`, so the admin has the full expiry time to free space."""
    conn.execute(_SET_OFFSET_AFTER_FULL_DISK,
                 {"offset": offset, "expires": to_db(expires), "id": upload_id})


def unfinished_ids(conn: Connection) -> list[str]:
    return [str(i) for i in conn.execute(_UNFINISHED).scalars()]


def set_content(conn: Connection, upload_id: str, content_id: str) -> None:
    conn.execute(_SET_CONTENT, {"content_id": content_id, "id": upload_id})


def delete(conn: Connection, upload_id: str) -> bool:
    return conn.execute(_DELETE, {"id": upload_id}).rowcount == 1


def expired(conn: Connection, now: datetime) -> list[str]:
    return [str(i) for i in conn.execute(_EXPIRED, {"now": to_db(now)}).scalars()]

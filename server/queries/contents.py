"""Contents, their assignments to parts of the county, and scheduled sessions."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from server.queries import new_id
from server.queries.county import bump_catalog_version
from shared.timeutil import to_db, utcnow

CONTENT_COLUMNS = (
    "id, sha256, size, title, kind, description, original_filename, duration_seconds, "
    "container, video_codec, audio_codec, width, height, poster_sha256, poster_size, created_at"
)


@dataclass(frozen=True)
class NewContent:
    sha256: str
    size: int
    title: str
    kind: str
    description: str
    original_filename: str
    duration_seconds: float
    container: str
    video_codec: str
    audio_codec: str | None
    width: int | None
    height: int | None
    poster_sha256: str | None
    poster_size: int | None


def add_content(conn: sqlite3.Connection, c: NewContent) -> tuple[str, bool]:
    """Insert a content record; the same bytes twice give the existing id and False."""
    row = conn.execute("SELECT id FROM contents WHERE sha256 = ?", (c.sha256,)).fetchone()
    if row is not None:
        return str(row[0]), False
    content_id = new_id()
    conn.execute(
        f"INSERT INTO contents ({CONTENT_COLUMNS}) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (content_id, c.sha256, c.size, c.title, c.kind, c.description, c.original_filename,
         c.duration_seconds, c.container, c.video_codec, c.audio_codec, c.width, c.height,
         c.poster_sha256, c.poster_size, to_db(utcnow())),
    )
    return content_id, True


def get_content(conn: sqlite3.Connection, content_id: str) -> dict[str, object] | None:
    row = conn.execute(f"SELECT {CONTENT_COLUMNS} FROM contents WHERE id = ?", (content_id,)).fetchone()
    return dict(row) if row else None


def list_contents(conn: sqlite3.Connection) -> list[dict[str, object]]:
    rows = conn.execute(f"SELECT {CONTENT_COLUMNS} FROM contents ORDER BY created_at DESC")
    return [dict(r) for r in rows]


def blob_known(conn: sqlite3.Connection, sha256: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM contents WHERE sha256 = ?1 OR poster_sha256 = ?1 LIMIT 1", (sha256,)
    ).fetchone() is not None


def update_content(
    conn: sqlite3.Connection, content_id: str, title: str | None, kind: str | None,
    description: str | None,
) -> bool:
    cur = conn.execute(
        "UPDATE contents SET title = COALESCE(?, title), kind = COALESCE(?, kind), "
        "description = COALESCE(?, description) WHERE id = ?",
        (title, kind, description, content_id),
    )
    if cur.rowcount:
        bump_catalog_version(conn)
    return cur.rowcount == 1


# --- assignments -----------------------------------------------------------------------


def add_assignment(
    conn: sqlite3.Connection, content_id: str, scope: str, target: str, needed_by: datetime | None
) -> str:
    """Assign content to county/unit/village/terminal; assigning again updates the date."""
    row = conn.execute(
        "INSERT INTO assignments (id, content_id, scope, target, needed_by, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(content_id, scope, target) "
        "DO UPDATE SET needed_by = excluded.needed_by RETURNING id",
        (new_id(), content_id, scope, target, to_db(needed_by) if needed_by else None,
         to_db(utcnow())),
    ).fetchone()
    bump_catalog_version(conn)
    return str(row[0])


def list_assignments(conn: sqlite3.Connection) -> list[dict[str, object]]:
    rows = conn.execute(
        "SELECT a.id, a.content_id, c.title, a.scope, a.target, a.needed_by, a.created_at "
        "FROM assignments a JOIN contents c ON c.id = a.content_id ORDER BY a.created_at"
    )
    return [dict(r) for r in rows]


def delete_assignment(conn: sqlite3.Connection, assignment_id: str) -> bool:
    cur = conn.execute("DELETE FROM assignments WHERE id = ?", (assignment_id,))
    if cur.rowcount:
        bump_catalog_version(conn)
    return cur.rowcount == 1


# --- sessions --------------------------------------------------------------------------


def add_session(
    conn: sqlite3.Connection, title: str, starts_at: datetime, content_ids: list[str],
    village_codes: list[str],
) -> str:
    session_id = new_id()
    conn.execute(
        "INSERT INTO sessions (id, title, starts_at, created_at) VALUES (?, ?, ?, ?)",
        (session_id, title, to_db(starts_at), to_db(utcnow())),
    )
    conn.executemany(
        "INSERT INTO session_items (session_id, position, content_id) VALUES (?, ?, ?)",
        [(session_id, i, cid) for i, cid in enumerate(content_ids)],
    )
    conn.executemany(
        "INSERT INTO session_villages (session_id, village_code) VALUES (?, ?)",
        [(session_id, code) for code in dict.fromkeys(village_codes)],
    )
    bump_catalog_version(conn)
    return session_id


def list_sessions(conn: sqlite3.Connection, since: datetime | None = None) -> list[dict[str, object]]:
    rows = conn.execute(
        "SELECT id, title, starts_at, created_at FROM sessions WHERE starts_at >= ? "
        "ORDER BY starts_at", (to_db(since) if since else "",),
    ).fetchall()
    out = []
    for r in rows:
        items = conn.execute(
            "SELECT c.id, c.sha256, c.title FROM session_items s JOIN contents c "
            "ON c.id = s.content_id WHERE s.session_id = ? ORDER BY s.position", (r["id"],),
        )
        villages = conn.execute(
            "SELECT village_code FROM session_villages WHERE session_id = ? ORDER BY village_code",
            (r["id"],),
        )
        out.append({**dict(r), "items": [dict(i) for i in items],
                    "villages": [v[0] for v in villages]})
    return out


def delete_session(conn: sqlite3.Connection, session_id: str) -> bool:
    cur = conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
    if cur.rowcount:
        bump_catalog_version(conn)
    return cur.rowcount == 1


def _missing(conn: sqlite3.Connection, table: str, column: str, values: list[str]) -> list[str]:
    if not values:
        return []
    marks = ",".join("?" * len(values))
    known = {r[0] for r in conn.execute(f"SELECT {column} FROM {table} WHERE {column} IN ({marks})",
                                        values)}
    return [v for v in values if v not in known]


def missing_contents(conn: sqlite3.Connection, content_ids: list[str]) -> list[str]:
    return _missing(conn, "contents", "id", content_ids)


def missing_villages(conn: sqlite3.Connection, codes: list[str]) -> list[str]:
    return _missing(conn, "villages", "code", codes)

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


@dataclass(frozen=True)
class ContentRow:
    """A content as stored: sizes in bytes, duration in seconds, `created_at` RFC 3339 UTC."""

    id: str
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
    created_at: str


@dataclass(frozen=True)
class AssignmentRow:
    """Content assigned to the county, a unit, a village or a terminal (`scope`, `target`)."""

    id: str
    content_id: str
    title: str
    scope: str
    target: str
    needed_by: str | None
    created_at: str


@dataclass(frozen=True)
class SessionItem:
    id: str
    sha256: str
    title: str


@dataclass(frozen=True)
class SessionRow:
    """A scheduled session: its items in order and the villages it is for."""

    id: str
    title: str
    starts_at: str
    created_at: str
    items: list[SessionItem]
    villages: list[str]


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


def get_content(conn: sqlite3.Connection, content_id: str) -> ContentRow | None:
    row = conn.execute(f"SELECT {CONTENT_COLUMNS} FROM contents WHERE id = ?", (content_id,)).fetchone()
    return ContentRow(*row) if row else None


def list_contents(conn: sqlite3.Connection) -> list[ContentRow]:
    """Contents in service (not retired), newest first."""
    rows = conn.execute(
        f"SELECT {CONTENT_COLUMNS} FROM contents WHERE retired_at IS NULL ORDER BY created_at DESC"
    )
    return [ContentRow(*r) for r in rows]


# Which terminals an assignment reaches: the county, a township, a village or one terminal.
_REACH = (
    "(a.scope = 'county' OR (a.scope = 'unit' AND a.target = v.unit_code) "
    "OR (a.scope = 'village' AND a.target = t.village_code) "
    "OR (a.scope = 'terminal' AND a.target = t.id))"
)


def add_egress(conn: sqlite3.Connection, counts: dict[str, int]) -> None:
    """Add bytes sent from /blobs, per sha256 (server.traffic)."""
    conn.executemany(
        "INSERT INTO content_egress (sha256, bytes) VALUES (?, ?) "
        "ON CONFLICT (sha256) DO UPDATE SET bytes = bytes + excluded.bytes",
        list(counts.items()),
    )


@dataclass(frozen=True)
class Reach:
    """A content in service: its assignments, the terminals they reach (`targeted`), the
    terminals `holding` it ready (from their last heartbeat), the bytes of it that left
    this server (`bytes_from_server`) and those terminals took in from each other
    (`bytes_from_peers`, from their last heartbeats)."""

    content_id: str
    assignments: int
    targeted: int
    holding: int
    bytes_from_server: int = 0
    bytes_from_peers: int = 0


def content_reach(conn: sqlite3.Connection) -> list[Reach]:
    """Per content in service (see Reach)."""
    holding = dict(conn.execute(
        "SELECT sha256, COUNT(*) FROM terminal_items WHERE state = 'ready' GROUP BY sha256"
    ).fetchall())
    from_peers = dict(conn.execute(
        "SELECT sha256, SUM(bytes_from_peers) FROM terminal_items GROUP BY sha256"
    ).fetchall())
    egress = dict(conn.execute("SELECT sha256, bytes FROM content_egress").fetchall())
    terminals = conn.execute(
        "SELECT t.id, t.village_code, v.unit_code FROM terminals t "
        "JOIN villages v ON v.code = t.village_code"
    ).fetchall()
    by_scope: dict[tuple[str, str], set[str]] = {("county", ""): {t[0] for t in terminals}}
    for terminal_id, village_code, unit_code in terminals:
        by_scope.setdefault(("unit", unit_code), set()).add(terminal_id)
        by_scope.setdefault(("village", village_code), set()).add(terminal_id)
        by_scope[("terminal", terminal_id)] = {terminal_id}
    in_service = {cid: sha for cid, sha in conn.execute(
        "SELECT id, sha256 FROM contents WHERE retired_at IS NULL")}
    assignments: dict[str, int] = {}
    reached: dict[str, set[str]] = {}
    for cid, scope, target in conn.execute("SELECT content_id, scope, target FROM assignments"):
        if cid in in_service:
            assignments[cid] = assignments.get(cid, 0) + 1
            reached.setdefault(cid, set()).update(by_scope.get((scope, target), ()))
    return [Reach(content_id=cid, assignments=assignments.get(cid, 0),
                  targeted=len(reached.get(cid, ())), holding=holding.get(sha, 0),
                  bytes_from_server=egress.get(sha, 0), bytes_from_peers=from_peers.get(sha, 0) or 0)
            for cid, sha in in_service.items()]


@dataclass(frozen=True)
class UsageAssignment:
    id: str
    scope: str
    target: str
    needed_by: str | None
    target_name: str | None  # the unit, village or terminal's village; 全县 for the county


@dataclass(frozen=True)
class UsageSession:
    id: str
    title: str
    starts_at: str


@dataclass(frozen=True)
class UsageTerminal:
    terminal_id: str
    village_name: str
    unit_name: str
    holding: bool  # reported the file ready in its last heartbeat
    targeted: bool  # an assignment reaches it


@dataclass(frozen=True)
class ContentUsage:
    content_id: str
    title: str
    assignments: list[UsageAssignment]
    sessions: list[UsageSession]
    terminals: list[UsageTerminal]


@dataclass(frozen=True)
class RollCallMember:
    member_no: str
    name: str  # empty when the number is no longer on the roster


@dataclass(frozen=True)
class RollCallEntry:
    """One sitting of a session at one terminal, with the members signed in."""

    terminal_id: str
    village_name: str
    unit_name: str
    started_at: str
    ended_at: str
    watched_seconds: float
    members: list[RollCallMember]


def content_usage(conn: sqlite3.Connection, content_id: str, now: datetime) -> ContentUsage | None:
    """Where one content is used: its assignments (with the target's name), upcoming
    sessions that show it, and the terminals that hold it or are meant to."""
    c = conn.execute("SELECT id, sha256, title FROM contents WHERE id = ?", (content_id,)).fetchone()
    if c is None:
        return None
    assignments = [UsageAssignment(*r) for r in conn.execute(
        "SELECT a.id, a.scope, a.target, a.needed_by, "
        "CASE a.scope WHEN 'county' THEN '全县' "
        " WHEN 'unit' THEN (SELECT name FROM units WHERE code = a.target) "
        " WHEN 'village' THEN (SELECT name FROM villages WHERE code = a.target) "
        " ELSE (SELECT v.name FROM terminals t JOIN villages v ON v.code = t.village_code "
        "       WHERE t.id = a.target) END AS target_name "
        "FROM assignments a WHERE a.content_id = ? ORDER BY a.created_at", (content_id,),
    )]
    sessions = [UsageSession(*r) for r in conn.execute(
        "SELECT s.id, s.title, s.starts_at FROM sessions s JOIN session_items si "
        "ON si.session_id = s.id WHERE si.content_id = ? AND s.starts_at >= ? "
        "ORDER BY s.starts_at", (content_id, to_db(now)),
    )]
    terminals = [UsageTerminal(r[0], r[1], r[2], bool(r[3]), bool(r[4])) for r in conn.execute(
        "SELECT t.id AS terminal_id, v.name AS village_name, u.name AS unit_name, "
        "EXISTS (SELECT 1 FROM terminal_items i WHERE i.terminal_id = t.id AND i.sha256 = ? "
        "        AND i.state = 'ready') AS holding, "
        f"EXISTS (SELECT 1 FROM assignments a WHERE a.content_id = ? AND {_REACH}) AS targeted "
        "FROM terminals t JOIN villages v ON v.code = t.village_code "
        "JOIN units u ON u.code = v.unit_code ORDER BY t.id", (c[1], content_id),
    ) if r[3] or r[4]]
    return ContentUsage(content_id=c[0], title=c[2], assignments=assignments,
                        sessions=sessions, terminals=terminals)


def retire_content(conn: sqlite3.Connection, content_id: str, now: datetime) -> bool:
    """Take a content out of service: its assignments go, it leaves upcoming sessions, and
    every catalog drops it (terminals then free its space). Past attendance keeps its name."""
    cur = conn.execute(
        "UPDATE contents SET retired_at = ? WHERE id = ? AND retired_at IS NULL",
        (to_db(now), content_id),
    )
    if not cur.rowcount:
        return False
    conn.execute("DELETE FROM assignments WHERE content_id = ?", (content_id,))
    conn.execute(
        "DELETE FROM session_items WHERE content_id = ? AND session_id IN "
        "(SELECT id FROM sessions WHERE starts_at >= ?)", (content_id, to_db(now)),
    )
    bump_catalog_version(conn)
    return True


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


def list_assignments(conn: sqlite3.Connection) -> list[AssignmentRow]:
    rows = conn.execute(
        "SELECT a.id, a.content_id, c.title, a.scope, a.target, a.needed_by, a.created_at "
        "FROM assignments a JOIN contents c ON c.id = a.content_id ORDER BY a.created_at"
    )
    return [AssignmentRow(*r) for r in rows]


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


def get_session(conn: sqlite3.Connection, session_id: str) -> SessionRow | None:
    found = [s for s in _sessions(conn, "", session_id)]
    return found[0] if found else None


def list_sessions(conn: sqlite3.Connection, since: datetime | None = None) -> list[SessionRow]:
    """Sessions from `since` on (all by default), each with its items and village codes;
    three queries whatever the number of sessions."""
    return _sessions(conn, to_db(since) if since else "", None)


def _sessions(conn: sqlite3.Connection, bound: str, one: str | None) -> list[SessionRow]:
    rows = conn.execute(
        "SELECT id, title, starts_at, created_at FROM sessions WHERE starts_at >= ?1 "
        "AND (?2 IS NULL OR id = ?2) ORDER BY starts_at", (bound, one),
    ).fetchall()
    items: dict[str, list[SessionItem]] = {}
    for i in conn.execute(
        "SELECT si.session_id, c.id, c.sha256, c.title FROM session_items si "
        "JOIN sessions s ON s.id = si.session_id JOIN contents c ON c.id = si.content_id "
        "WHERE s.starts_at >= ?1 AND (?2 IS NULL OR s.id = ?2) "
        "ORDER BY si.session_id, si.position", (bound, one),
    ):
        items.setdefault(i[0], []).append(SessionItem(id=i[1], sha256=i[2], title=i[3]))
    villages: dict[str, list[str]] = {}
    for v in conn.execute(
        "SELECT sv.session_id, sv.village_code FROM session_villages sv "
        "JOIN sessions s ON s.id = sv.session_id WHERE s.starts_at >= ?1 "
        "AND (?2 IS NULL OR s.id = ?2) ORDER BY sv.session_id, sv.village_code", (bound, one),
    ):
        villages.setdefault(v[0], []).append(v[1])
    return [SessionRow(id=r[0], title=r[1], starts_at=r[2], created_at=r[3],
                       items=items.get(r[0], []), villages=villages.get(r[0], []))
            for r in rows]


def update_session(
    conn: sqlite3.Connection, session_id: str, title: str | None, starts_at: datetime | None,
    content_ids: list[str] | None, village_codes: list[str] | None,
) -> bool:
    """Change what is given; lists replace the session's items or villages whole."""
    cur = conn.execute(
        "UPDATE sessions SET title = COALESCE(?, title), starts_at = COALESCE(?, starts_at) "
        "WHERE id = ?", (title, to_db(starts_at) if starts_at else None, session_id),
    )
    if not cur.rowcount:
        return False
    if content_ids is not None:
        conn.execute("DELETE FROM session_items WHERE session_id = ?", (session_id,))
        conn.executemany(
            "INSERT INTO session_items (session_id, position, content_id) VALUES (?, ?, ?)",
            [(session_id, i, cid) for i, cid in enumerate(content_ids)],
        )
    if village_codes is not None:
        conn.execute("DELETE FROM session_villages WHERE session_id = ?", (session_id,))
        conn.executemany(
            "INSERT INTO session_villages (session_id, village_code) VALUES (?, ?)",
            [(session_id, code) for code in dict.fromkeys(village_codes)],
        )
    bump_catalog_version(conn)
    return True


def session_starts(conn: sqlite3.Connection, session_id: str) -> str | None:
    row = conn.execute("SELECT starts_at FROM sessions WHERE id = ?", (session_id,)).fetchone()
    return str(row[0]) if row else None


def session_roll_call(conn: sqlite3.Connection, session_id: str) -> list[RollCallEntry]:
    """The attendance records a session produced, one per terminal sitting, each with the
    members signed in (number and name)."""
    out = []
    for r in conn.execute(
        "SELECT a.id, a.terminal_id, v.name AS village_name, u.name AS unit_name, a.started_at, "
        "a.ended_at, a.watched_seconds FROM attendance a JOIN terminals t ON t.id = a.terminal_id "
        "JOIN villages v ON v.code = t.village_code JOIN units u ON u.code = v.unit_code "
        "WHERE a.session_id = ? ORDER BY u.code, a.terminal_id, a.started_at", (session_id,),
    ).fetchall():
        members = [RollCallMember(*m) for m in conn.execute(
            "SELECT am.member_no, COALESCE(m.name, '') AS name FROM attendance_members am "
            "LEFT JOIN members m ON m.member_no = am.member_no WHERE am.attendance_id = ? "
            "ORDER BY am.member_no", (r[0],),
        )]
        out.append(RollCallEntry(terminal_id=r[1], village_name=r[2], unit_name=r[3],
                                 started_at=r[4], ended_at=r[5], watched_seconds=r[6],
                                 members=members))
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

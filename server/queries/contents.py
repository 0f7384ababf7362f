"""Contents, their assignments to parts of the county, and scheduled sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, text

from server.queries import for_county, in_county, new_id
from server.queries.county import bump_catalog_version, county_label
from shared.timeutil import to_db, utcnow

CONTENT_COLUMNS = (
    "id, sha256, size, title, kind, description, original_filename, duration_seconds, "
    "container, video_codec, audio_codec, width, height, poster_sha256, poster_size, created_at, "
    "county_code"
)
# A content `c` that `:county`'s account may use: the province's (every county's) or that
# county's own; the province's account (`:county` NULL) may use every one.
USABLE = for_county("c.county_code IS NULL OR c.county_code = :county")


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
    county: str | None = None  # the county whose account uploaded it; None: the province's


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
    county: str | None  # the county whose account uploaded it (its own); None: the province's


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


_CONTENT_ID_BY_SHA = text("SELECT id FROM contents WHERE sha256 = :sha256")
_INSERT_CONTENT = text(
    f"INSERT INTO contents ({CONTENT_COLUMNS}) VALUES "
    "(:id, :sha256, :size, :title, :kind, :description, :original_filename, :duration_seconds, "
    ":container, :video_codec, :audio_codec, :width, :height, :poster_sha256, :poster_size, "
    ":created_at, :county) ON CONFLICT (sha256) DO NOTHING RETURNING id"
)
_GET_CONTENT = text(f"SELECT {CONTENT_COLUMNS} FROM contents c WHERE id = :id AND {USABLE}")
_LIST_CONTENTS = text(
    f"SELECT {CONTENT_COLUMNS} FROM contents c WHERE retired_at IS NULL AND {USABLE} "
    "ORDER BY created_at DESC"
)
_TO_PROVINCE = text("UPDATE contents SET county_code = NULL WHERE id = :id")


def add_content(conn: Connection, c: NewContent) -> tuple[str, bool]:
    """Insert a content record; the same bytes twice give the existing id and False (also
    when another server process stored them a moment before)."""
    content_id = new_id()
    inserted = conn.execute(_INSERT_CONTENT, {
        "id": content_id, "sha256": c.sha256, "size": c.size, "title": c.title, "kind": c.kind,
        "description": c.description, "original_filename": c.original_filename,
        "duration_seconds": c.duration_seconds, "container": c.container,
        "video_codec": c.video_codec, "audio_codec": c.audio_codec, "width": c.width,
        "height": c.height, "poster_sha256": c.poster_sha256, "poster_size": c.poster_size,
        "created_at": to_db(utcnow()), "county": c.county,
    }).scalar_one_or_none()
    if inserted is not None:
        return content_id, True
    return str(conn.execute(_CONTENT_ID_BY_SHA, {"sha256": c.sha256}).scalar_one()), False


def get_content(conn: Connection, content_id: str, county: str | None = None) -> ContentRow | None:
    """The content, if `county`'s account may use it (None: the province's, any)."""
    row = conn.execute(_GET_CONTENT, {"id": content_id, "county": county}).first()
    return ContentRow(*row) if row else None


_OWNER_OF_FILE = text("SELECT county_code, title FROM contents WHERE sha256 = :sha256")


def other_countys_file(conn: Connection, sha256: str, county: str) -> tuple[str, str, str] | None:
    """When the file `sha256` is already the own content of a county other than `county`:
    (that county's code, the content's title, the county as a person reads it)."""
    found = conn.execute(_OWNER_OF_FILE, {"sha256": sha256}).first()
    if found is None or found[0] is None or found[0] == county:
        return None
    return str(found[0]), str(found[1]), county_label(conn, str(found[0]))


def list_contents(conn: Connection, county: str | None = None) -> list[ContentRow]:
    """Contents in service (not retired) that `county`'s account may use (None: the
    province's, all), newest first."""
    return [ContentRow(*r) for r in conn.execute(_LIST_CONTENTS, {"county": county})]


def to_province(conn: Connection, content_id: str) -> None:
    """A county's content becomes the province's: every county may use it; only the
    province's account may change or retire it from then on."""
    conn.execute(_TO_PROVINCE, {"id": content_id})


# Which terminals an assignment reaches: the county, a township, a village or one terminal.
_REACH = (
    "((a.scope = 'county' AND a.target IN ('', u.county_code)) "
    "OR (a.scope = 'unit' AND a.target = v.unit_code) "
    "OR (a.scope = 'village' AND a.target = t.village_code) "
    "OR (a.scope = 'terminal' AND a.target = t.id))"
)

_ADD_EGRESS = text(
    "INSERT INTO content_egress (sha256, bytes) VALUES (:sha256, :bytes) "
    "ON CONFLICT (sha256) DO UPDATE SET bytes = content_egress.bytes + excluded.bytes"
)


def add_egress(conn: Connection, counts: dict[str, int]) -> None:
    """Add bytes sent from /blobs, per sha256 (server.traffic)."""
    if counts:
        conn.execute(_ADD_EGRESS, [{"sha256": sha, "bytes": n} for sha, n in counts.items()])


@dataclass(frozen=True)
class Reach:
    """A content in service: its assignments, the terminals they reach (`targeted`), the
    terminals `holding` it ready (from their last heartbeat), the bytes of it that left
    this server (`bytes_from_server`) and those terminals took in from each other
    (`bytes_from_peers`, from their last heartbeats).

    For one county (`content_reach(conn, county)`) every figure is that county's: the
    assignments that reach it, its terminals. The server counts the bytes it sent per
    content, not per terminal, so a county's `bytes_from_server` is 0 and
    `bytes_from_server_known` False."""

    content_id: str
    assignments: int
    targeted: int
    holding: int
    bytes_from_server: int = 0
    bytes_from_peers: int = 0
    bytes_from_server_known: bool = True


# Per file, over the terminals of `:county` (all, for the province): how many hold it
# ready and the bytes of it they took in from each other.
_ITEMS = text(
    "SELECT i.sha256, CAST(SUM(CASE WHEN i.state = 'ready' THEN 1 ELSE 0 END) AS BIGINT), "
    "CAST(SUM(i.bytes_from_peers) AS BIGINT) FROM terminal_items i "
    "JOIN terminals t ON t.id = i.terminal_id JOIN villages v ON v.code = t.village_code "
    f"JOIN units u ON u.code = v.unit_code WHERE {in_county('u.county_code')} GROUP BY i.sha256"
)
# The same for the whole province: every terminal's items, without the joins (1,200,000
# items at province scale).
_ITEMS_PROVINCE = text(
    "SELECT sha256, CAST(SUM(CASE WHEN state = 'ready' THEN 1 ELSE 0 END) AS BIGINT), "
    "CAST(SUM(bytes_from_peers) AS BIGINT) FROM terminal_items GROUP BY sha256"
)
_EGRESS = text("SELECT sha256, bytes FROM content_egress")
_TERMINAL_PLACES = text(
    "SELECT t.id, t.village_code, v.unit_code, u.county_code FROM terminals t "
    "JOIN villages v ON v.code = t.village_code JOIN units u ON u.code = v.unit_code "
    f"WHERE {in_county('u.county_code')}"
)
_IN_SERVICE = text(f"SELECT id, sha256 FROM contents c WHERE retired_at IS NULL AND {USABLE}")
# _REACHING_ASSIGNMENTS (the assignments that reach `:county`) sits below _REACHES_COUNTY.


def content_reach(conn: Connection, county: str | None = None) -> list[Reach]:
    """Per content in service (see Reach); with `county` (a code), that county's figures."""
    args = {"county": county}
    holding: dict[str, int] = {}
    from_peers: dict[str, int] = {}
    for sha, ready, peers in conn.execute(_ITEMS if county is not None else _ITEMS_PROVINCE, args):
        holding[sha], from_peers[sha] = int(ready or 0), int(peers or 0)
    egress: dict[str, int] = (
        {r[0]: int(r[1]) for r in conn.execute(_EGRESS)} if county is None else {})
    # Only the county's terminals: an assignment to every terminal reaches its own alone.
    terminals = conn.execute(_TERMINAL_PLACES, args).all()
    by_scope: dict[tuple[str, str], set[str]] = {("county", ""): {t[0] for t in terminals}}
    for terminal_id, village_code, unit_code, county_code in terminals:
        by_scope.setdefault(("county", county_code), set()).add(terminal_id)
        by_scope.setdefault(("unit", unit_code), set()).add(terminal_id)
        by_scope.setdefault(("village", village_code), set()).add(terminal_id)
        by_scope[("terminal", terminal_id)] = {terminal_id}
    in_service: dict[str, str] = {r[0]: r[1] for r in conn.execute(_IN_SERVICE, args)}
    assignments: dict[str, int] = {}
    reached: dict[str, set[str]] = {}
    for cid, scope, target in conn.execute(_REACHING_ASSIGNMENTS, args):
        if cid in in_service:
            assignments[cid] = assignments.get(cid, 0) + 1
            reached.setdefault(cid, set()).update(by_scope.get((scope, target), ()))
    return [Reach(content_id=cid, assignments=assignments.get(cid, 0),
                  targeted=len(reached.get(cid, ())), holding=holding.get(sha, 0),
                  bytes_from_server=egress.get(sha, 0), bytes_from_peers=from_peers.get(sha, 0),
                  bytes_from_server_known=county is None)
            for cid, sha in in_service.items()]


@dataclass(frozen=True)
class UsageAssignment:
    id: str
    scope: str
    target: str
    needed_by: str | None
    target_name: str | None  # the county, unit, village or terminal's village; 全县 or 全省: every terminal


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


_USAGE_CONTENT = text(f"SELECT id, sha256, title FROM contents c WHERE id = :id AND {USABLE}")
# _USAGE_ASSIGNMENTS (those reaching `:county`) sits below _REACHES_COUNTY.
_USAGE_SESSIONS = text(
    "SELECT s.id, s.title, s.starts_at FROM sessions s JOIN session_items si "
    "ON si.session_id = s.id WHERE si.content_id = :id AND s.starts_at >= :now "
    f"AND {in_county('s.county_code')} ORDER BY s.starts_at"
)
# EXISTS is an integer on SQLite and a boolean on PostgreSQL: read both with bool().
_USAGE_TERMINALS = text(
    "SELECT t.id AS terminal_id, v.name AS village_name, u.name AS unit_name, "
    "EXISTS (SELECT 1 FROM terminal_items i WHERE i.terminal_id = t.id AND i.sha256 = :sha256 "
    "        AND i.state = 'ready') AS holding, "
    f"EXISTS (SELECT 1 FROM assignments a WHERE a.content_id = :id AND {_REACH}) AS targeted "
    "FROM terminals t JOIN villages v ON v.code = t.village_code "
    f"JOIN units u ON u.code = v.unit_code WHERE {in_county('u.county_code')} ORDER BY t.id"
)


def content_usage(
    conn: Connection, content_id: str, now: datetime, county: str | None = None,
) -> ContentUsage | None:
    """Where one content is used: its assignments (with the target's name), upcoming
    sessions that show it, and the terminals that hold it or are meant to. With `county`
    (a code): the assignments that reach that county, the sessions it made, its terminals.
    None when there is no such content that county may use (see `USABLE`)."""
    c = conn.execute(_USAGE_CONTENT, {"id": content_id, "county": county}).first()
    if c is None:
        return None
    args = {"id": content_id, "county": county}
    assignments = [UsageAssignment(*r) for r in conn.execute(_USAGE_ASSIGNMENTS, args)]
    sessions = [UsageSession(*r) for r in conn.execute(
        _USAGE_SESSIONS, {**args, "now": to_db(now)})]
    terminals = [UsageTerminal(r[0], r[1], r[2], bool(r[3]), bool(r[4])) for r in conn.execute(
        _USAGE_TERMINALS, {**args, "sha256": c.sha256},
    ) if r[3] or r[4]]
    return ContentUsage(content_id=c.id, title=c.title, assignments=assignments,
                        sessions=sessions, terminals=terminals)


_RETIRE = text("UPDATE contents SET retired_at = :now WHERE id = :id AND retired_at IS NULL")
_DELETE_ASSIGNMENTS_OF = text("DELETE FROM assignments WHERE content_id = :id")
_DELETE_UPCOMING_ITEMS_OF = text(
    "DELETE FROM session_items WHERE content_id = :id AND session_id IN "
    "(SELECT id FROM sessions WHERE starts_at >= :now)"
)


def retire_content(conn: Connection, content_id: str, now: datetime) -> bool:
    """Take a content out of service: its assignments go, it leaves upcoming sessions, and
    every catalog drops it (terminals then free its space). Past attendance keeps its name."""
    args = {"id": content_id, "now": to_db(now)}
    if not conn.execute(_RETIRE, args).rowcount:
        return False
    conn.execute(_DELETE_ASSIGNMENTS_OF, args)
    conn.execute(_DELETE_UPCOMING_ITEMS_OF, args)
    bump_catalog_version(conn)
    return True


_BLOB_KNOWN = text(
    "SELECT 1 FROM contents WHERE sha256 = :sha256 OR poster_sha256 = :sha256 LIMIT 1"
)


def blob_known(conn: Connection, sha256: str) -> bool:
    return conn.execute(_BLOB_KNOWN, {"sha256": sha256}).first() is not None


_UPDATE_CONTENT = text(
    "UPDATE contents SET title = COALESCE(:title, title), kind = COALESCE(:kind, kind), "
    "description = COALESCE(:description, description) WHERE id = :id"
)


def update_content(
    conn: Connection, content_id: str, title: str | None, kind: str | None,
    description: str | None,
) -> bool:
    changed = conn.execute(_UPDATE_CONTENT, {
        "title": title, "kind": kind, "description": description, "id": content_id}).rowcount
    if changed:
        bump_catalog_version(conn)
    return changed == 1


# --- assignments -----------------------------------------------------------------------

_ADD_ASSIGNMENT = text(
    "INSERT INTO assignments (id, content_id, scope, target, needed_by, created_at) "
    "VALUES (:id, :content_id, :scope, :target, :needed_by, :created_at) "
    "ON CONFLICT (content_id, scope, target) "
    "DO UPDATE SET needed_by = excluded.needed_by RETURNING id"
)
# The county an assignment's target lies in; a 'county' assignment's target is a county
# code, or '' for every terminal of this server (the province, or the one county).
_TARGET_COUNTY = {
    "county": text("SELECT code FROM counties WHERE code = :target"),
    "unit": text("SELECT county_code FROM units WHERE code = :target"),
    "village": text("SELECT u.county_code FROM villages v JOIN units u ON u.code = v.unit_code "
                    "WHERE v.code = :target"),
    "terminal": text("SELECT u.county_code FROM terminals t "
                     "JOIN villages v ON v.code = t.village_code "
                     "JOIN units u ON u.code = v.unit_code WHERE t.id = :target"),
}
_REACHES_COUNTY = for_county(
    "(a.scope = 'county' AND a.target IN ('', :county)) "
    "OR (a.scope = 'unit' AND a.target IN (SELECT code FROM units WHERE county_code = :county)) "
    "OR (a.scope = 'village' AND a.target IN (SELECT v.code FROM villages v "
    "JOIN units u ON u.code = v.unit_code WHERE u.county_code = :county)) "
    "OR (a.scope = 'terminal' AND a.target IN (SELECT t.id FROM terminals t "
    "JOIN villages v ON v.code = t.village_code JOIN units u ON u.code = v.unit_code "
    "WHERE u.county_code = :county))"
)
# The library's figures for one county (content_reach, content_usage above) count the
# assignments that reach it by the rule the county's list of assignments uses.
_REACHING_ASSIGNMENTS = text(
    f"SELECT a.content_id, a.scope, a.target FROM assignments a WHERE {_REACHES_COUNTY}"
)
_USAGE_ASSIGNMENTS = text(
    "SELECT a.id, a.scope, a.target, a.needed_by, "
    "CASE WHEN a.scope = 'county' AND a.target = '' "
    " THEN (CASE WHEN (SELECT COUNT(*) FROM counties) > 1 THEN '全省' ELSE '全县' END) "
    " WHEN a.scope = 'county' THEN (SELECT CASE WHEN name = '' THEN code ELSE name END "
    "                               FROM counties WHERE code = a.target) "
    " WHEN a.scope = 'unit' THEN (SELECT name FROM units WHERE code = a.target) "
    " WHEN a.scope = 'village' THEN (SELECT name FROM villages WHERE code = a.target) "
    " ELSE (SELECT v.name FROM terminals t JOIN villages v ON v.code = t.village_code "
    "       WHERE t.id = a.target) END AS target_name "
    f"FROM assignments a WHERE a.content_id = :id AND {_REACHES_COUNTY} ORDER BY a.created_at"
)
_LIST_ASSIGNMENTS = text(
    "SELECT a.id, a.content_id, c.title, a.scope, a.target, a.needed_by, a.created_at "
    f"FROM assignments a JOIN contents c ON c.id = a.content_id WHERE {_REACHES_COUNTY} "
    "ORDER BY a.created_at"
)
_ASSIGNMENT = text("SELECT scope, target FROM assignments WHERE id = :id")
_DELETE_ASSIGNMENT = text("DELETE FROM assignments WHERE id = :id")


def target_county(conn: Connection, scope: str, target: str) -> str | None:
    """The county `target` (of an assignment to a `scope`) lies in; "" for a 'county'
    assignment to every terminal (`target` ""); None when there is no such target."""
    if scope == "county" and target == "":
        return ""
    found = conn.execute(_TARGET_COUNTY[scope], {"target": target}).scalar()
    return None if found is None else str(found)


def assignment_county(conn: Connection, assignment_id: str) -> str | None:
    """The county an assignment's target lies in ("" for every terminal); None when there
    is no such assignment."""
    row = conn.execute(_ASSIGNMENT, {"id": assignment_id}).first()
    return None if row is None else target_county(conn, row.scope, row.target) or ""


def add_assignment(
    conn: Connection, content_id: str, scope: str, target: str, needed_by: datetime | None
) -> str:
    """Assign content to county/unit/village/terminal; assigning again updates the date."""
    assignment_id = conn.execute(_ADD_ASSIGNMENT, {
        "id": new_id(), "content_id": content_id, "scope": scope, "target": target,
        "needed_by": to_db(needed_by) if needed_by else None, "created_at": to_db(utcnow()),
    }).scalar_one()
    bump_catalog_version(conn)
    return str(assignment_id)


def list_assignments(conn: Connection, county: str | None = None) -> list[AssignmentRow]:
    """Every assignment, or (`county` a code) those that reach that county's terminals:
    its own and the ones to every terminal."""
    return [AssignmentRow(*r) for r in conn.execute(_LIST_ASSIGNMENTS, {"county": county})]


def delete_assignment(conn: Connection, assignment_id: str) -> bool:
    deleted = conn.execute(_DELETE_ASSIGNMENT, {"id": assignment_id}).rowcount
    if deleted:
        bump_catalog_version(conn)
    return deleted == 1


# --- sessions --------------------------------------------------------------------------

_ADD_SESSION = text(
    "INSERT INTO sessions (id, title, starts_at, created_at, county_code) "
    "VALUES (:id, :title, :starts_at, :created_at, :county)"
)
_ADD_SESSION_ITEM = text(
    "INSERT INTO session_items (session_id, position, content_id) "
    "VALUES (:session_id, :position, :content_id)"
)
_ADD_SESSION_VILLAGE = text(
    "INSERT INTO session_villages (session_id, village_code) VALUES (:session_id, :village_code)"
)


def _put_items(conn: Connection, session_id: str, content_ids: list[str]) -> None:
    if content_ids:
        conn.execute(_ADD_SESSION_ITEM, [
            {"session_id": session_id, "position": i, "content_id": cid}
            for i, cid in enumerate(content_ids)])


def _put_villages(conn: Connection, session_id: str, village_codes: list[str]) -> None:
    if village_codes:
        conn.execute(_ADD_SESSION_VILLAGE, [
            {"session_id": session_id, "village_code": code}
            for code in dict.fromkeys(village_codes)])


def add_session(
    conn: Connection, title: str, starts_at: datetime, content_ids: list[str],
    village_codes: list[str], county: str | None = None,
) -> str:
    """A new session; `county` (a code) when a county's account makes it, its owner."""
    session_id = new_id()
    conn.execute(_ADD_SESSION, {"id": session_id, "title": title, "county": county,
                                "starts_at": to_db(starts_at), "created_at": to_db(utcnow())})
    _put_items(conn, session_id, content_ids)
    _put_villages(conn, session_id, village_codes)
    bump_catalog_version(conn)
    return session_id


def get_session(conn: Connection, session_id: str, county: str | None = None) -> SessionRow | None:
    found = [s for s in _sessions(conn, "", session_id, county)]
    return found[0] if found else None


def list_sessions(conn: Connection, since: datetime | None = None,
                  county: str | None = None) -> list[SessionRow]:
    """Sessions from `since` on (all by default), each with its items and village codes;
    three queries whatever the number of sessions. With `county` (a county's account)
    the sessions that county made."""
    return _sessions(conn, to_db(since) if since else "", None, county)


# `:one` and `:county` are NULL for every session; PostgreSQL needs their type spelt out.
_ONE = ("(CAST(:one AS TEXT) IS NULL OR s.id = :one) "
        f"AND {in_county('s.county_code')}")
_SESSIONS = text(
    f"SELECT s.id, s.title, s.starts_at, s.created_at FROM sessions s WHERE s.starts_at >= :bound "
    f"AND {_ONE} ORDER BY s.starts_at"
)
_SESSIONS_ITEMS = text(
    "SELECT si.session_id, c.id, c.sha256, c.title FROM session_items si "
    "JOIN sessions s ON s.id = si.session_id JOIN contents c ON c.id = si.content_id "
    f"WHERE s.starts_at >= :bound AND {_ONE} "
    "ORDER BY si.session_id, si.position"
)
_SESSIONS_VILLAGES = text(
    "SELECT sv.session_id, sv.village_code FROM session_villages sv "
    f"JOIN sessions s ON s.id = sv.session_id WHERE s.starts_at >= :bound "
    f"AND {_ONE} ORDER BY sv.session_id, sv.village_code"
)


def _sessions(conn: Connection, bound: str, one: str | None, county: str | None) -> list[SessionRow]:
    args = {"bound": bound, "one": one, "county": county}
    rows = conn.execute(_SESSIONS, args).all()
    items: dict[str, list[SessionItem]] = {}
    for i in conn.execute(_SESSIONS_ITEMS, args):
        items.setdefault(i[0], []).append(SessionItem(id=i[1], sha256=i[2], title=i[3]))
    villages: dict[str, list[str]] = {}
    for v in conn.execute(_SESSIONS_VILLAGES, args):
        villages.setdefault(v[0], []).append(v[1])
    return [SessionRow(id=r[0], title=r[1], starts_at=r[2], created_at=r[3],
                       items=items.get(r[0], []), villages=villages.get(r[0], []))
            for r in rows]


_UPDATE_SESSION = text(
    "UPDATE sessions SET title = COALESCE(:title, title), "
    "starts_at = COALESCE(:starts_at, starts_at) WHERE id = :id"
)
_DELETE_SESSION_ITEMS = text("DELETE FROM session_items WHERE session_id = :id")
_DELETE_SESSION_VILLAGES = text("DELETE FROM session_villages WHERE session_id = :id")


def update_session(
    conn: Connection, session_id: str, title: str | None, starts_at: datetime | None,
    content_ids: list[str] | None, village_codes: list[str] | None,
) -> bool:
    """Change what is given; lists replace the session's items or villages whole."""
    if not conn.execute(_UPDATE_SESSION, {
            "title": title, "starts_at": to_db(starts_at) if starts_at else None,
            "id": session_id}).rowcount:
        return False
    if content_ids is not None:
        conn.execute(_DELETE_SESSION_ITEMS, {"id": session_id})
        _put_items(conn, session_id, content_ids)
    if village_codes is not None:
        conn.execute(_DELETE_SESSION_VILLAGES, {"id": session_id})
        _put_villages(conn, session_id, village_codes)
    bump_catalog_version(conn)
    return True


_SESSION_STARTS = text(
    "SELECT starts_at FROM sessions WHERE id = :id "
    f"AND {in_county('county_code')}"
)


def session_starts(conn: Connection, session_id: str, county: str | None = None) -> str | None:
    """When a session starts; None when there is none (of `county`, when given)."""
    starts = conn.execute(_SESSION_STARTS, {"id": session_id, "county": county}).scalar_one_or_none()
    return str(starts) if starts is not None else None


_ROLL_CALL = text(
    "SELECT a.id, a.terminal_id, v.name AS village_name, u.name AS unit_name, a.started_at, "
    "a.ended_at, a.watched_seconds FROM attendance a JOIN terminals t ON t.id = a.terminal_id "
    "JOIN villages v ON v.code = t.village_code JOIN units u ON u.code = v.unit_code "
    "WHERE a.session_id = :id ORDER BY u.code, a.terminal_id, a.started_at"
)
_ROLL_CALL_MEMBERS = text(
    "SELECT am.member_no, COALESCE(m.name, '') AS name FROM attendance_members am "
    "LEFT JOIN members m ON m.member_no = am.member_no WHERE am.attendance_id = :id "
    "ORDER BY am.member_no"
)


def session_roll_call(conn: Connection, session_id: str) -> list[RollCallEntry]:
    """The attendance records a session produced, one per terminal sitting, each with the
    members signed in (number and name)."""
    out = []
    for r in conn.execute(_ROLL_CALL, {"id": session_id}).all():
        members = [RollCallMember(*m) for m in conn.execute(_ROLL_CALL_MEMBERS, {"id": r[0]})]
        out.append(RollCallEntry(terminal_id=r[1], village_name=r[2], unit_name=r[3],
                                 started_at=r[4], ended_at=r[5], watched_seconds=r[6],
                                 members=members))
    return out


_DELETE_SESSION = text(
    f"DELETE FROM sessions WHERE id = :id AND {in_county('county_code')}"
)


def delete_session(conn: Connection, session_id: str, county: str | None = None) -> bool:
    deleted = conn.execute(_DELETE_SESSION, {"id": session_id, "county": county}).rowcount
    if deleted:
        bump_catalog_version(conn)
    return deleted == 1


_KNOWN_CONTENTS = text(f"SELECT id FROM contents c WHERE id IN :values AND {USABLE}").bindparams(
    bindparam("values", expanding=True))
_KNOWN_VILLAGES = text(
    "SELECT v.code FROM villages v JOIN units u ON u.code = v.unit_code WHERE v.code IN :values "
    f"AND {in_county('u.county_code')}"
).bindparams(bindparam("values", expanding=True))


def missing_contents(conn: Connection, content_ids: list[str], county: str | None = None
                     ) -> list[str]:
    """Of `content_ids`, those that are no content `county`'s account may use."""
    known = set(conn.execute(_KNOWN_CONTENTS, {"values": content_ids, "county": county}).scalars())
    return [v for v in content_ids if v not in known]


_CONTENT_COUNTIES = text(
    "SELECT county_code, title FROM contents WHERE id IN :values AND county_code IS NOT NULL"
).bindparams(bindparam("values", expanding=True))
_VILLAGE_COUNTIES = text(
    "SELECT DISTINCT u.county_code FROM villages v JOIN units u ON u.code = v.unit_code "
    "WHERE v.code IN :values"
).bindparams(bindparam("values", expanding=True))


def owned_contents(conn: Connection, content_ids: list[str]) -> list[tuple[str, str]]:
    """Of `content_ids`, those a county owns (its account uploaded them): (county, title)."""
    return [(r[0], r[1]) for r in conn.execute(_CONTENT_COUNTIES, {"values": content_ids})]


def village_counties(conn: Connection, codes: list[str]) -> set[str]:
    """The counties `codes` (villages) lie in."""
    return set(conn.execute(_VILLAGE_COUNTIES, {"values": codes}).scalars()) if codes else set()


def missing_villages(conn: Connection, codes: list[str], county: str | None = None) -> list[str]:
    """The codes that name no village (of `county`, when given)."""
    known = set(conn.execute(_KNOWN_VILLAGES, {"values": codes, "county": county}).scalars())
    return [v for v in codes if v not in known]

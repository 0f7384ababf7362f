"""Heartbeats, fleet status and session readiness."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import BindParameter, Connection, bindparam, text

from server.db import executemany
from server.queries import for_county
from server.queries.county import IN_COUNTY
from shared.protocol import Heartbeat
from shared.timeutil import to_db

_SEEN = text(
    "UPDATE terminals SET last_seen = :seen, last_address = :address, heartbeat = :heartbeat "
    "WHERE id = :id"
)
_HELD = text(
    "SELECT terminal_id, sha256, state, bytes_present, bytes_from_peers FROM terminal_items "
    "WHERE terminal_id IN :ids"
).bindparams(bindparam("ids", expanding=True))
_DROP_ITEM = text("DELETE FROM terminal_items WHERE terminal_id = :id AND sha256 = :sha256")
_PUT_ITEM = text(
    "INSERT INTO terminal_items (terminal_id, sha256, state, bytes_present, bytes_from_peers) "
    "VALUES (:id, :sha256, :state, :bytes_present, :bytes_from_peers) "
    "ON CONFLICT (terminal_id, sha256) DO UPDATE SET state = excluded.state, "
    "bytes_present = excluded.bytes_present, bytes_from_peers = excluded.bytes_from_peers"
)


@dataclass(frozen=True)
class Beat:
    """One heartbeat as received: from `terminal_id` at `seen_at` (UTC), from `address`."""

    terminal_id: str
    hb: Heartbeat
    seen_at: datetime
    address: str | None


def stored_beat(hb: Heartbeat) -> str:
    """A heartbeat as `terminals.heartbeat` keeps it: without its cache, which is kept
    item by item in `terminal_items` (60 items are most of a beat's bytes: written with
    every beat and read by every fleet listing, 20,000 times over in a province)."""
    return msgspec.json.encode(msgspec.structs.replace(hb, cache=[])).decode()


def record_heartbeats(conn: Connection, beats: Sequence[Beat]) -> None:
    """Store heartbeats, any number of terminals at once, in five statements whatever
    their number (the fleet's commonest write, so statements per beat is what counts).

    For each terminal its last beat counts: `terminal_items` becomes that beat's cache (an
    item named twice counts as its last mention). Only the items that changed are
    written: a terminal whose cache stands still costs its share of one read, not a
    rewrite of its rows each beat."""
    last = {b.terminal_id: b for b in beats}
    if not last:
        return
    executemany(conn, _SEEN, [
        {"seen": to_db(b.seen_at), "address": b.address, "heartbeat": stored_beat(b.hb), "id": tid}
        for tid, b in last.items()
    ])
    held: dict[str, dict[str, tuple[str, int, int]]] = {tid: {} for tid in last}
    for r in conn.execute(_HELD, {"ids": list(last)}):
        held[r.terminal_id][r.sha256] = (r.state, int(r.bytes_present), int(r.bytes_from_peers))
    gone: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for tid, b in last.items():
        wanted = {c.sha256: (c.state, c.bytes_present, c.bytes_from_peers) for c in b.hb.cache}
        had = held[tid]
        gone += [{"id": tid, "sha256": sha} for sha in had if sha not in wanted]
        changed += [
            {"id": tid, "sha256": sha, "state": state, "bytes_present": present,
             "bytes_from_peers": from_peers}
            for sha, (state, present, from_peers) in wanted.items()
            if had.get(sha) != (state, present, from_peers)
        ]
    executemany(conn, _DROP_ITEM, gone)
    executemany(conn, _PUT_ITEM, changed)


def record_heartbeat(
    conn: Connection, terminal_id: str, hb: Heartbeat, seen_at: datetime, address: str | None
) -> None:
    """One heartbeat: `record_heartbeats` of one."""
    record_heartbeats(conn, [Beat(terminal_id, hb, seen_at, address)])


@dataclass(frozen=True)
class FleetRow:
    """A terminal point as the fleet view shows it: times are RFC 3339 UTC text,
    `heartbeat` the last one as JSON, `ready_items` how many items it holds verified."""

    id: str
    name: str
    village_code: str
    village_name: str
    unit_code: str
    unit_name: str
    terrain: str
    last_seen: str | None
    last_address: str | None
    heartbeat: str | None
    enrolled_at: str | None
    revoked_at: str | None
    last_usb_contact: str | None  # when it last answered by USB stick
    ready_items: int


@dataclass(frozen=True)
class UpcomingSession:
    id: str
    title: str
    starts_at: str


@dataclass(frozen=True)
class SessionTerminal:
    id: str
    village_code: str
    village_name: str


_FLEET = text(
    "SELECT t.id, t.name, t.village_code, v.name AS village_name, v.unit_code, "
    "u.name AS unit_name, v.terrain, t.last_seen, t.last_address, t.heartbeat, "
    "t.enrolled_at, t.revoked_at, t.last_usb_contact, "
    "(SELECT COUNT(*) FROM terminal_items i WHERE i.terminal_id = t.id AND i.state = 'ready') "
    "AS ready_items "
    "FROM terminals t JOIN villages v ON v.code = t.village_code "
    f"JOIN units u ON u.code = v.unit_code WHERE {IN_COUNTY} ORDER BY t.id"
)
# For a county: the sessions held in at least one of its villages.
_UPCOMING = text(
    "SELECT s.id, s.title, s.starts_at FROM sessions s WHERE s.starts_at >= :since AND "
    + for_county("EXISTS (SELECT 1 FROM session_villages sv "
                 "JOIN villages v ON v.code = sv.village_code JOIN units u ON u.code = v.unit_code "
                 "WHERE sv.session_id = s.id AND u.county_code = :county)")
    + " ORDER BY s.starts_at, s.id"
)
_IDS: BindParameter[list[str]] = bindparam("ids", expanding=True)
_NEEDS = text(
    "SELECT si.session_id, c.sha256 FROM session_items si JOIN contents c ON c.id = si.content_id "
    "WHERE si.session_id IN :ids ORDER BY si.session_id, si.position"
).bindparams(_IDS)
_SESSION_TERMINALS = text(
    "SELECT sv.session_id, t.id, t.village_code, v.name AS village_name FROM session_villages sv "
    "JOIN terminals t ON t.village_code = sv.village_code "
    "JOIN villages v ON v.code = t.village_code JOIN units u ON u.code = v.unit_code "
    f"WHERE sv.session_id IN :ids AND {IN_COUNTY} ORDER BY sv.session_id, t.id"
).bindparams(_IDS)
# Of the terminals of those sessions, the items they hold ready that those sessions need.
_SESSIONS_READY = text(
    "SELECT DISTINCT i.terminal_id, i.sha256 FROM session_villages sv "
    "JOIN terminals t ON t.village_code = sv.village_code "
    "JOIN session_items si ON si.session_id = sv.session_id "
    "JOIN contents c ON c.id = si.content_id "
    "JOIN terminal_items i ON i.terminal_id = t.id AND i.sha256 = c.sha256 AND i.state = 'ready' "
    "WHERE sv.session_id IN :ids"
).bindparams(_IDS)
_READY = text("SELECT sha256 FROM terminal_items WHERE terminal_id = :id AND state = 'ready'")


# `county` None: every county (the province's account); a code: that county's alone.


def fleet_rows(conn: Connection, county: str | None = None) -> list[FleetRow]:
    return [FleetRow(*r) for r in conn.execute(_FLEET, {"county": county})]


def upcoming_sessions(conn: Connection, since: datetime,
                      county: str | None = None) -> list[UpcomingSession]:
    return [UpcomingSession(*r)
            for r in conn.execute(_UPCOMING, {"since": to_db(since), "county": county})]


@dataclass(frozen=True)
class SessionsReadiness:
    """What the readiness view is made of, for the sessions ahead, in four queries
    whatever their number: each session's items (sha256, in order), its terminals, and
    which of the items they need each of those terminals holds ready."""

    sessions: list[UpcomingSession]
    needs: dict[str, list[str]]  # session id -> sha256s
    terminals: dict[str, list[SessionTerminal]]  # session id -> its terminals (of `county`)
    ready: dict[str, set[str]]  # terminal id -> sha256s held ready (of those needed)


def sessions_readiness(conn: Connection, since: datetime,
                       county: str | None = None) -> SessionsReadiness:
    sessions = upcoming_sessions(conn, since, county)
    needs: dict[str, list[str]] = {}
    terminals: dict[str, list[SessionTerminal]] = {}
    ready: dict[str, set[str]] = {}
    ids = [s.id for s in sessions]
    if ids:
        for session_id, sha256 in conn.execute(_NEEDS, {"ids": ids}):
            needs.setdefault(session_id, []).append(sha256)
        for r in conn.execute(_SESSION_TERMINALS, {"ids": ids, "county": county}):
            terminals.setdefault(r[0], []).append(SessionTerminal(*r[1:]))
        for terminal_id, sha256 in conn.execute(_SESSIONS_READY, {"ids": ids}):
            ready.setdefault(terminal_id, set()).add(sha256)
    return SessionsReadiness(sessions, needs, terminals, ready)


def ready_hashes(conn: Connection, terminal_id: str) -> set[str]:
    return set(conn.execute(_READY, {"id": terminal_id}).scalars())

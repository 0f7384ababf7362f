"""The terminal's SQL, in one place: state, cache index, records, roster.

Each function takes a connection and runs inside `Database.read()` or `write()`; nothing
else in the terminal writes SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shared.protocol import CatalogItem, Member
from shared.timeutil import to_db

# --- key/value state ------------------------------------------------------------------


def get_kv(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_kv(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def del_kv(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM kv WHERE key = ?", (key,))


# --- cache items ----------------------------------------------------------------------


@dataclass(frozen=True)
class ItemRow:
    sha256: str
    size: int
    content_id: str
    title: str
    kind: str
    duration: float
    needed_by: str | None
    assigned: bool
    state: str
    bytes_present: int
    verified_mtime_ns: int | None
    verified_at: str | None
    last_played: str | None
    resumed_from: int | None
    error: str
    bytes_from_peers: int = 0  # of this item, taken in from other terminals


def _item(row: sqlite3.Row) -> ItemRow:
    return ItemRow(
        sha256=row["sha256"], size=row["size"], content_id=row["content_id"], title=row["title"],
        kind=row["kind"], duration=row["duration"], needed_by=row["needed_by"],
        assigned=bool(row["assigned"]), state=row["state"], bytes_present=row["bytes_present"],
        verified_mtime_ns=row["verified_mtime_ns"], verified_at=row["verified_at"],
        last_played=row["last_played"],
        resumed_from=row["resumed_from"], error=row["error"], bytes_from_peers=row["bytes_from_peers"],
    )


def apply_catalog_items(conn: sqlite3.Connection, items: Sequence[CatalogItem]) -> None:
    """Make the catalog's items the assigned set; what left it stays cached, unassigned."""
    conn.execute("UPDATE items SET assigned = 0")
    conn.executemany(
        "INSERT INTO items (sha256, size, content_id, title, kind, duration, needed_by, assigned) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (sha256) DO UPDATE SET "
        "content_id = excluded.content_id, title = excluded.title, kind = excluded.kind, "
        "duration = excluded.duration, needed_by = excluded.needed_by, assigned = 1",
        [(i.sha256, i.size, i.content_id, i.title, i.kind.value, i.duration_seconds,
          to_db(i.needed_by) if i.needed_by else None) for i in items],
    )


def add_peer_bytes(conn: sqlite3.Connection, sha256: str, count: int) -> None:
    conn.execute("UPDATE items SET bytes_from_peers = bytes_from_peers + ? WHERE sha256 = ?",
                 (count, sha256))


def items(conn: sqlite3.Connection) -> list[ItemRow]:
    return [_item(r) for r in conn.execute("SELECT * FROM items ORDER BY rowid")]


def item(conn: sqlite3.Connection, sha256: str) -> ItemRow | None:
    row = conn.execute("SELECT * FROM items WHERE sha256 = ?", (sha256,)).fetchone()
    return None if row is None else _item(row)


def wanted(conn: sqlite3.Connection) -> list[ItemRow]:
    """Assigned items to download, needed-sooner first (no deadline last).

    Not those being verified: their bytes are there, the scrub decides about them.
    """
    return [_item(r) for r in conn.execute(
        "SELECT * FROM items WHERE assigned = 1 AND state NOT IN ('ready', 'verifying') "
        "ORDER BY needed_by IS NULL, needed_by, rowid"
    )]


def set_state(
    conn: sqlite3.Connection, sha256: str, state: str, *, bytes_present: int | None = None,
    error: str = "", verified_mtime_ns: int | None = None, verified_at: str | None = None,
) -> None:
    conn.execute(
        "UPDATE items SET state = ?, error = ?, bytes_present = COALESCE(?, bytes_present), "
        "verified_mtime_ns = ?, verified_at = ? WHERE sha256 = ?",
        (state, error, bytes_present, verified_mtime_ns, verified_at, sha256),
    )


def mark_unverified(conn: sqlite3.Connection, sha256s: Iterable[str]) -> int:
    """Ready items whose bytes must be hashed again before they count as ready."""
    return conn.executemany(
        "UPDATE items SET state = 'verifying' WHERE sha256 = ? AND state = 'ready'",
        [(s,) for s in sha256s],
    ).rowcount


def mark_due(conn: sqlite3.Connection, checked_before: str) -> int:
    """Ready items last hashed before `checked_before` (stored time form) become unverified."""
    return conn.execute(
        "UPDATE items SET state = 'verifying' WHERE state = 'ready' "
        "AND (verified_at IS NULL OR verified_at < ?)", (checked_before,),
    ).rowcount


def set_progress(conn: sqlite3.Connection, sha256: str, bytes_present: int) -> None:
    conn.execute("UPDATE items SET bytes_present = ? WHERE sha256 = ?", (bytes_present, sha256))


def set_resumed(conn: sqlite3.Connection, sha256: str, offset: int) -> None:
    conn.execute("UPDATE items SET resumed_from = ? WHERE sha256 = ?", (offset, sha256))


def mark_played(conn: sqlite3.Connection, sha256: str, when: str) -> None:
    conn.execute("UPDATE items SET last_played = ? WHERE sha256 = ?", (when, sha256))


def forget(conn: sqlite3.Connection, sha256: str) -> None:
    conn.execute("DELETE FROM items WHERE sha256 = ?", (sha256,))


def eviction_order(conn: sqlite3.Connection, keep: Iterable[str]) -> list[ItemRow]:
    """Unassigned items holding bytes, least recently played first, minus `keep`."""
    keep = set(keep)
    rows = conn.execute(
        "SELECT * FROM items WHERE assigned = 0 AND bytes_present > 0 "
        "ORDER BY last_played IS NOT NULL, last_played, rowid"
    )
    return [_item(r) for r in rows if r["sha256"] not in keep]


# --- attendance records ---------------------------------------------------------------


@dataclass(frozen=True)
class RecordRow:
    record_id: str
    seq: int
    session_id: str | None
    title: str
    started_at: str
    ended_at: str
    items: str
    attendees: str
    state: str
    boot_id: str | None = None
    started_mono: float | None = None
    ended_mono: float | None = None
    clock_confirmed: bool | None = None
    refusal: str = ""


def _record(row: sqlite3.Row) -> RecordRow:
    confirmed = row["clock_confirmed"]
    return RecordRow(
        record_id=row["record_id"], seq=row["seq"], session_id=row["session_id"],
        title=row["title"], started_at=row["started_at"], ended_at=row["ended_at"],
        items=row["items"], attendees=row["attendees"], state=row["state"],
        boot_id=row["boot_id"], started_mono=row["started_mono"], ended_mono=row["ended_mono"],
        clock_confirmed=None if confirmed is None else bool(confirmed), refusal=row["refusal"],
    )


@dataclass(frozen=True)
class RecordClock:
    """Where a record's start sits in time: the boot, its monotonic reading, and whether
    the server had confirmed the wall clock then."""

    boot_id: str
    started_mono: float
    confirmed: bool


def open_record(
    conn: sqlite3.Connection, record_id: str, session_id: str | None, title: str,
    started_at: str, attendees: str, clock: RecordClock | None = None,
) -> int:
    """Insert an open record with the next sequence number; returns that number."""
    (last,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()
    stored = get_kv(conn, "last_seq")
    seq = max(int(last), int(stored or 0)) + 1
    set_kv(conn, "last_seq", str(seq))  # sent records are deleted; the counter must not go back
    conn.execute(
        "INSERT INTO records (record_id, seq, session_id, title, started_at, ended_at, attendees, "
        "boot_id, started_mono, ended_mono, clock_confirmed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (record_id, seq, session_id, title, started_at, started_at, attendees,
         clock.boot_id if clock else None, clock.started_mono if clock else None,
         clock.started_mono if clock else None, int(clock.confirmed) if clock else None),
    )
    return seq


def save_record(
    conn: sqlite3.Connection, record_id: str, ended_at: str, items: str, attendees: str,
    *, close: bool = False, ended_mono: float | None = None,
) -> None:
    conn.execute(
        "UPDATE records SET ended_at = ?, items = ?, attendees = ?, "
        "ended_mono = COALESCE(?, ended_mono), "
        "state = CASE WHEN ? THEN 'closed' ELSE state END WHERE record_id = ? AND state = 'open'",
        (ended_at, items, attendees, ended_mono, close, record_id),
    )


def close_open_records(conn: sqlite3.Connection) -> int:
    """After a crash: an open record ends with its last saved values."""
    return conn.execute("UPDATE records SET state = 'closed' WHERE state = 'open'").rowcount


def closed_records(conn: sqlite3.Connection, limit: int) -> list[RecordRow]:
    return [_record(r) for r in conn.execute(
        "SELECT * FROM records WHERE state = 'closed' ORDER BY seq LIMIT ?", (limit,)
    )]


def record(conn: sqlite3.Connection, record_id: str) -> RecordRow | None:
    row = conn.execute("SELECT * FROM records WHERE record_id = ?", (record_id,)).fetchone()
    return None if row is None else _record(row)


def delete_records(conn: sqlite3.Connection, record_ids: Sequence[str]) -> int:
    return conn.executemany(
        "DELETE FROM records WHERE record_id = ? AND state = 'closed'", [(r,) for r in record_ids]
    ).rowcount


def quarantine(conn: sqlite3.Connection, record_ids: Sequence[str], refusal: str = "") -> None:
    """Hold records the server refused, with its words; `release_held` offers them again."""
    conn.executemany(
        "UPDATE records SET state = 'quarantined', refusal = ? WHERE record_id = ?",
        [(refusal, r) for r in record_ids],
    )


def release_held(conn: sqlite3.Connection) -> int:
    """Held records go back in the queue (their refusal is kept until one is accepted)."""
    return conn.execute("UPDATE records SET state = 'closed' WHERE state = 'quarantined'").rowcount


def held_refusal(conn: sqlite3.Connection) -> str:
    """Why the most recently held record was refused ('' when none is held)."""
    row = conn.execute(
        "SELECT refusal FROM records WHERE state = 'quarantined' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return "" if row is None else str(row[0])


def record_counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts = {"open": 0, "closed": 0, "quarantined": 0}
    for state, n in conn.execute("SELECT state, COUNT(*) FROM records GROUP BY state"):
        counts[state] = n
    return counts


def session_ran(conn: sqlite3.Connection, session_id: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM sessions_run WHERE session_id = ?", (session_id,)
    ).fetchone() is not None


def mark_session_ran(conn: sqlite3.Connection, session_id: str, when: str) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO sessions_run (session_id, started_at) VALUES (?, ?)", (session_id, when)
    )


# --- roster ---------------------------------------------------------------------------


def replace_roster(conn: sqlite3.Connection, members: Sequence[Member]) -> None:
    conn.execute("DELETE FROM roster")
    conn.executemany(
        "INSERT OR REPLACE INTO roster (member_no, name, sex, branch) VALUES (?, ?, ?, ?)",
        [(m.member_no, m.name, m.sex, m.branch) for m in members],
    )


def roster(conn: sqlite3.Connection) -> list[Member]:
    return [
        Member(member_no=r["member_no"], name=r["name"], sex=r["sex"], branch=r["branch"])
        for r in conn.execute("SELECT * FROM roster ORDER BY CAST(member_no AS INTEGER), member_no")
    ]

"""Attendance ingest: idempotent on (terminal, record id), all or nothing per batch."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import datetime

import msgspec

from shared.protocol import AttendanceRecord
from shared.timeutil import to_db

_encoder = msgspec.json.Encoder()


def record_digest(r: AttendanceRecord) -> str:
    """A fingerprint of what a record says, independent of attendee and item order."""
    canonical = (
        r.record_id, r.seq, to_db(r.started_at), to_db(r.ended_at), r.session_id, r.title,
        sorted((i.sha256, round(i.watched_seconds, 3)) for i in r.items), sorted(set(r.attendees)),
    )
    return hashlib.sha256(_encoder.encode(canonical)).hexdigest()


@dataclass(frozen=True)
class IngestResult:
    accepted: list[str]
    duplicates: int
    conflicts: list[str]


def ingest(
    conn: sqlite3.Connection, terminal_id: str, records: list[AttendanceRecord],
    terminal_clock: datetime, received_at: datetime,
) -> IngestResult:
    """Store new records; identical repeats are acknowledged, changed repeats are conflicts.

    On any conflict nothing is written, so the caller can reject the batch whole.
    """
    digests: dict[str, str] = {}
    clashing: list[str] = []
    for r in records:
        d = record_digest(r)
        if digests.setdefault(r.record_id, d) != d:
            clashing.append(r.record_id)  # the same id twice in one batch, saying two things
    if clashing:
        return IngestResult(accepted=[], duplicates=0, conflicts=sorted(set(clashing)))
    known: dict[str, str] = {}
    ids = list(digests)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        known.update(
            (row[0], row[1]) for row in conn.execute(
                "SELECT record_id, digest FROM attendance WHERE terminal_id = ? AND record_id IN "
                f"({','.join('?' * len(chunk))})", [terminal_id, *chunk],
            )
        )
    conflicts = [rid for rid, d in known.items() if d != digests[rid]]
    if conflicts:
        return IngestResult(accepted=[], duplicates=0, conflicts=conflicts)
    seen: set[str] = set()
    fresh = []
    for r in records:
        if r.record_id not in known and r.record_id not in seen:
            seen.add(r.record_id)
            fresh.append(r)
    clock, received = to_db(terminal_clock), to_db(received_at)
    conn.executemany(
        "INSERT INTO attendance (terminal_id, record_id, seq, session_id, title, started_at, "
        "ended_at, watched_seconds, terminal_clock, received_at, digest) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(terminal_id, r.record_id, r.seq, r.session_id, r.title, to_db(r.started_at),
          to_db(r.ended_at), sum(i.watched_seconds for i in r.items), clock, received,
          digests[r.record_id]) for r in fresh],
    )
    conn.executemany(
        "INSERT INTO attendance_items (terminal_id, record_id, sha256, watched_seconds) "
        "VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
        "watched_seconds = watched_seconds + excluded.watched_seconds",
        [(terminal_id, r.record_id, i.sha256, i.watched_seconds) for r in fresh for i in r.items],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO attendance_members (terminal_id, record_id, member_no) "
        "VALUES (?, ?, ?)",
        [(terminal_id, r.record_id, m) for r in fresh for m in r.attendees],
    )
    return IngestResult(
        accepted=list(digests), duplicates=len(records) - len(fresh), conflicts=[]
    )

"""Attendance ingest: idempotent on (terminal, record id), all or nothing per batch."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec

from shared.protocol import AttendanceRecord
from shared.timeutil import to_db

_encoder = msgspec.json.Encoder()


def record_digest(r: AttendanceRecord, started: str, ended: str) -> str:
    """A fingerprint of what a record says, independent of attendee and item order."""
    canonical = (
        r.record_id, r.seq, started, ended, r.session_id, r.title,
        sorted((i.sha256, round(i.watched_seconds, 3)) for i in r.items), sorted(set(r.attendees)),
    )
    return hashlib.sha256(_encoder.encode(canonical)).hexdigest()


@dataclass(frozen=True)
class IngestResult:
    accepted: list[str]
    duplicates: int
    conflicts: list[str]


@dataclass(frozen=True)
class PreparedBatch:
    """A batch checked and turned into rows before it reaches the writer, so the writer
    thread spends its time in SQLite, not in Python."""

    records: Sequence[tuple[str, tuple[object, ...], list[tuple[str, float]], list[str]]]
    digests: dict[str, str]
    clashing: list[str]
    size: int


def prepare(records: list[AttendanceRecord]) -> PreparedBatch:
    digests: dict[str, str] = {}
    clashing: list[str] = []
    rows = []
    for r in records:
        started, ended = to_db(r.started_at), to_db(r.ended_at)
        d = record_digest(r, started, ended)
        if r.record_id in digests:
            if digests[r.record_id] != d:
                clashing.append(r.record_id)  # the same id twice in one batch, saying two things
            continue
        digests[r.record_id] = d
        watched = sum(i.watched_seconds for i in r.items)
        rows.append((r.record_id, (r.record_id, r.seq, r.session_id, r.title, started, ended,
                                   watched),
                     [(i.sha256, i.watched_seconds) for i in r.items], r.attendees))
    return PreparedBatch(records=rows, digests=digests, clashing=sorted(set(clashing)),
                         size=len(records))


def ingest(
    conn: sqlite3.Connection, terminal_id: str, batch: PreparedBatch,
    terminal_clock: datetime, received_at: datetime,
) -> IngestResult:
    """Store new records; identical repeats are acknowledged, changed repeats are conflicts.

    On any conflict nothing is written, so the caller can reject the batch whole.
    """
    if batch.clashing:
        return IngestResult(accepted=[], duplicates=0, conflicts=batch.clashing)
    known: dict[str, str] = {}
    record_ids = list(batch.digests)
    for start in range(0, len(record_ids), 500):
        chunk = record_ids[start:start + 500]
        known.update(
            (row[0], row[1]) for row in conn.execute(
                "SELECT record_id, digest FROM attendance WHERE terminal_id = ? AND record_id IN "
                f"({','.join('?' * len(chunk))})", [terminal_id, *chunk],
            )
        )
    conflicts = [rid for rid, d in known.items() if d != batch.digests[rid]]
    if conflicts:
        return IngestResult(accepted=[], duplicates=0, conflicts=conflicts)
    fresh = [row for row in batch.records if row[0] not in known]
    clock, received = to_db(terminal_clock), to_db(received_at)
    conn.executemany(
        "INSERT INTO attendance (terminal_id, record_id, seq, session_id, title, started_at, "
        "ended_at, watched_seconds, terminal_clock, received_at, digest) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(terminal_id, *values, clock, received, batch.digests[rid]) for rid, values, _, _ in fresh],
    )
    # One writer, one statement: the new rows took consecutive ids ending at the last one.
    last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    row_ids = range(last - len(fresh) + 1, last + 1)
    conn.executemany(
        "INSERT INTO attendance_items (attendance_id, sha256, watched_seconds) VALUES (?, ?, ?) "
        "ON CONFLICT DO UPDATE SET watched_seconds = watched_seconds + excluded.watched_seconds",
        [(row_id, sha, w) for row_id, (_, _, items, _) in zip(row_ids, fresh, strict=True)
         for sha, w in items],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO attendance_members (attendance_id, member_no) VALUES (?, ?)",
        [(row_id, m) for row_id, (_, _, _, members) in zip(row_ids, fresh, strict=True)
         for m in members],
    )
    return IngestResult(
        accepted=record_ids, duplicates=batch.size - len(fresh), conflicts=[]
    )

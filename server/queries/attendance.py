"""Attendance ingest: idempotent on (terminal, record id), all or nothing per batch."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec

from server import placement
from shared.protocol import AttendanceBatch, AttendanceRecord
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
class PreparedRecord:
    record_id: str
    values: tuple[object, ...]  # the attendance row from seq to watched_seconds
    items: list[tuple[str, float]]
    attendees: list[str]
    reasons: tuple[str, ...]  # time reasons from the placement


@dataclass(frozen=True)
class PreparedBatch:
    """A batch checked, placed and turned into rows before it reaches the writer, so the
    writer thread spends its time in SQLite, not in Python."""

    records: Sequence[PreparedRecord]
    digests: dict[str, str]
    clashing: list[str]
    size: int


def prepare(batch: AttendanceBatch, received_at: datetime) -> PreparedBatch:
    digests: dict[str, str] = {}
    clashing: list[str] = []
    rows = []
    anchors = placement.batch_anchors(batch, received_at)
    for r in batch.records:
        started, ended = to_db(r.started_at), to_db(r.ended_at)
        d = record_digest(r, started, ended)
        if r.record_id in digests:
            if digests[r.record_id] != d:
                clashing.append(r.record_id)  # the same id twice in one batch, saying two things
            continue
        digests[r.record_id] = d
        watched = sum(i.watched_seconds for i in r.items)
        where = placement.place(r, batch.terminal_clock, received_at, anchors)
        rows.append(PreparedRecord(
            record_id=r.record_id,
            values=(r.seq, r.session_id, r.title, to_db(where.started_at), to_db(where.ended_at),
                    watched, started, ended),
            items=[(i.sha256, i.watched_seconds) for i in r.items],
            attendees=list(dict.fromkeys(r.attendees)), reasons=where.reasons,
        ))
    return PreparedBatch(records=rows, digests=digests, clashing=sorted(set(clashing)),
                         size=len(batch.records))


def _village_roster(conn: sqlite3.Connection, terminal_id: str, people: set[str]) -> set[str]:
    """Which of `people` are members of the terminal's village."""
    found: set[str] = set()
    numbers = sorted(people)
    for start in range(0, len(numbers), 500):
        chunk = numbers[start:start + 500]
        found.update(row[0] for row in conn.execute(
            "SELECT m.member_no FROM members m JOIN terminals t ON t.village_code = m.village_code "
            f"WHERE t.id = ? AND m.member_no IN ({','.join('?' * len(chunk))})",
            [terminal_id, *chunk],
        ))
    return found


def ingest(
    conn: sqlite3.Connection, terminal_id: str, batch: PreparedBatch,
    terminal_clock: datetime, received_at: datetime,
) -> IngestResult:
    """Store new records; identical repeats are acknowledged, changed repeats are conflicts.

    Every new record is stored, flagged or not: its placement in `started_at`/`ended_at`,
    the terminal's times in `reported_*`, its reasons in `flags` (comma-separated), and
    `held` = 1 when a time reason keeps it out of the counts. Attendees not on the
    terminal's village roster are stored with `on_roster` = 0 and flag the record
    `not_on_roster`. On any conflict nothing is written, so the caller can reject the
    batch whole.
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
    fresh = [row for row in batch.records if row.record_id not in known]
    on_roster = _village_roster(conn, terminal_id, {m for row in fresh for m in row.attendees})
    clock, received = to_db(terminal_clock), to_db(received_at)
    rows = []
    for row in fresh:
        reasons = list(row.reasons)
        if any(m not in on_roster for m in row.attendees):
            reasons.append(placement.NOT_ON_ROSTER)
        held = any(r in placement.TIME_REASONS for r in reasons)
        rows.append((terminal_id, row.record_id, *row.values, clock, received,
                     batch.digests[row.record_id], ",".join(reasons), int(held)))
    conn.executemany(
        "INSERT INTO attendance (terminal_id, record_id, seq, session_id, title, started_at, "
        "ended_at, watched_seconds, reported_started_at, reported_ended_at, terminal_clock, "
        "received_at, digest, flags, held) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    # One writer, one statement: the new rows took consecutive ids ending at the last one.
    last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    row_ids = range(last - len(fresh) + 1, last + 1)
    conn.executemany(
        "INSERT INTO attendance_items (attendance_id, sha256, watched_seconds) VALUES (?, ?, ?) "
        "ON CONFLICT DO UPDATE SET watched_seconds = watched_seconds + excluded.watched_seconds",
        [(row_id, sha, w) for row_id, row in zip(row_ids, fresh, strict=True)
         for sha, w in row.items],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO attendance_members (attendance_id, member_no, on_roster) "
        "VALUES (?, ?, ?)",
        [(row_id, m, int(m in on_roster)) for row_id, row in zip(row_ids, fresh, strict=True)
         for m in row.attendees],
    )
    return IngestResult(
        accepted=record_ids, duplicates=batch.size - len(fresh), conflicts=[]
    )


# --- flagged records ------------------------------------------------------------------


@dataclass(frozen=True)
class FlaggedRow:
    """A record stored but not counted: `flags` are its reasons, comma-separated; times
    RFC 3339 UTC text; `attendees` how many signed in."""

    terminal_id: str
    record_id: str
    village_code: str
    village_name: str
    title: str
    started_at: str
    ended_at: str
    reported_started_at: str  # nullable column, but written with every record since it came
    received_at: str
    watched_seconds: float
    flags: str
    attendees: int


@dataclass(frozen=True)
class FlaggedRef:
    """Where a flagged record is placed now; `id` is its attendance row."""

    id: int
    started_at: str
    ended_at: str
    received_at: str


def flagged(conn: sqlite3.Connection) -> list[FlaggedRow]:
    """Flagged records not yet confirmed, oldest received first."""
    return [FlaggedRow(*r) for r in conn.execute(
        "SELECT a.terminal_id, a.record_id, t.village_code, v.name AS village_name, a.title, "
        "a.started_at, a.ended_at, a.reported_started_at, a.received_at, a.watched_seconds, "
        "a.flags, (SELECT COUNT(*) FROM attendance_members am WHERE am.attendance_id = a.id) "
        "AS attendees "
        "FROM attendance a JOIN terminals t ON t.id = a.terminal_id "
        "JOIN villages v ON v.code = t.village_code "
        "WHERE a.flags != '' AND a.confirmed_at IS NULL ORDER BY a.received_at, a.id"
    )]


def flagged_record(conn: sqlite3.Connection, terminal_id: str, record_id: str) -> FlaggedRef | None:
    """A record that was flagged (confirmed or not), with its placement."""
    row = conn.execute(
        "SELECT id, started_at, ended_at, received_at FROM attendance "
        "WHERE terminal_id = ? AND record_id = ? AND flags != ''", (terminal_id, record_id),
    ).fetchone()
    return None if row is None else FlaggedRef(*row)


def confirm(
    conn: sqlite3.Connection, attendance_id: int, started_at: str, ended_at: str, confirmed_at: str,
) -> None:
    """A person placed the record: it counts from now on, at these times, with every attendee."""
    conn.execute(
        "UPDATE attendance SET started_at = ?, ended_at = ?, held = 0, confirmed_at = ? WHERE id = ?",
        (started_at, ended_at, confirmed_at, attendance_id),
    )

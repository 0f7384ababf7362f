"""Attendance ingest: idempotent on (terminal, record id), all or nothing per batch."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy import Connection, bindparam, text

from server import placement
from server.db import executemany
from server.queries import in_county, rollups
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
    values: dict[str, object]  # the attendance row's columns from seq to reported_ended_at
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
            values={"seq": r.seq, "session_id": r.session_id, "title": r.title,
                    "started_at": to_db(where.started_at), "ended_at": to_db(where.ended_at),
                    "watched_seconds": watched, "reported_started_at": started,
                    "reported_ended_at": ended},
            items=[(i.sha256, i.watched_seconds) for i in r.items],
            attendees=list(dict.fromkeys(r.attendees)), reasons=where.reasons,
        ))
    return PreparedBatch(records=rows, digests=digests, clashing=sorted(set(clashing)),
                         size=len(batch.records))


_CHUNK = 500  # names per IN list

_ON_ROSTER = text(
    "SELECT m.member_no FROM members m JOIN terminals t ON t.village_code = m.village_code "
    "WHERE t.id = :terminal AND m.member_no IN :numbers"
).bindparams(bindparam("numbers", expanding=True))

_KNOWN = text(
    "SELECT record_id, digest FROM attendance WHERE terminal_id = :terminal AND record_id IN :ids"
).bindparams(bindparam("ids", expanding=True))

_IDS = text(
    "SELECT record_id, id FROM attendance WHERE terminal_id = :terminal AND record_id IN :ids"
).bindparams(bindparam("ids", expanding=True))

_INSERT = text(
    "INSERT INTO attendance (terminal_id, record_id, seq, session_id, title, started_at, "
    "ended_at, watched_seconds, reported_started_at, reported_ended_at, terminal_clock, "
    "received_at, digest, flags, held) VALUES (:terminal_id, :record_id, :seq, :session_id, "
    ":title, :started_at, :ended_at, :watched_seconds, :reported_started_at, "
    ":reported_ended_at, :terminal_clock, :received_at, :digest, :flags, :held)"
)

# The same item twice in one record adds up.
_INSERT_ITEM = text(
    "INSERT INTO attendance_items (attendance_id, sha256, watched_seconds) "
    "VALUES (:attendance_id, :sha256, :watched_seconds) "
    "ON CONFLICT (attendance_id, sha256) DO UPDATE "
    "SET watched_seconds = attendance_items.watched_seconds + excluded.watched_seconds"
)

_INSERT_MEMBER = text(
    "INSERT INTO attendance_members (attendance_id, member_no, on_roster) "
    "VALUES (:attendance_id, :member_no, :on_roster) "
    "ON CONFLICT (attendance_id, member_no) DO NOTHING"
)


def _village_roster(conn: Connection, terminal_id: str, people: set[str]) -> set[str]:
    """Which of `people` are members of the terminal's village."""
    found: set[str] = set()
    numbers = sorted(people)
    for start in range(0, len(numbers), _CHUNK):
        found.update(conn.execute(
            _ON_ROSTER, {"terminal": terminal_id, "numbers": numbers[start:start + _CHUNK]}
        ).scalars())
    return found


def ingest(
    conn: Connection, terminal_id: str, batch: PreparedBatch,
    terminal_clock: datetime, received_at: datetime, basis: rollups.Basis,
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
    for start in range(0, len(record_ids), _CHUNK):
        known.update(
            (row.record_id, row.digest) for row in conn.execute(
                _KNOWN, {"terminal": terminal_id, "ids": record_ids[start:start + _CHUNK]}
            )
        )
    conflicts = [rid for rid, d in known.items() if d != batch.digests[rid]]
    if conflicts:
        return IngestResult(accepted=[], duplicates=0, conflicts=conflicts)
    fresh = [row for row in batch.records if row.record_id not in known]
    if not fresh:
        return IngestResult(accepted=record_ids, duplicates=batch.size, conflicts=[])
    on_roster = _village_roster(conn, terminal_id, {m for row in fresh for m in row.attendees})
    clock, received = to_db(terminal_clock), to_db(received_at)
    rows = []
    counted = rollups.Contributions(basis)  # added to the roll-ups from memory, no re-read
    for row in fresh:
        reasons = list(row.reasons)
        if any(m not in on_roster for m in row.attendees):
            reasons.append(placement.NOT_ON_ROSTER)
        held = any(r in placement.TIME_REASONS for r in reasons)
        watched = float(row.values["watched_seconds"])  # type: ignore[arg-type]
        if not held and watched > 0:
            counted.record(terminal_id, str(row.values["started_at"]), watched,
                           (m for m in row.attendees if m in on_roster))
        rows.append({"terminal_id": terminal_id, "record_id": row.record_id, **row.values,
                     "terminal_clock": clock, "received_at": received,
                     "digest": batch.digests[row.record_id], "flags": ",".join(reasons),
                     "held": int(held)})
    executemany(conn, _INSERT, rows)
    # The keys the new rows took, read back by their unique (terminal, record id).
    fresh_ids = [row.record_id for row in fresh]
    row_ids: dict[str, int] = {}
    for start in range(0, len(fresh_ids), _CHUNK):
        row_ids.update((r.record_id, r.id) for r in conn.execute(
            _IDS, {"terminal": terminal_id, "ids": fresh_ids[start:start + _CHUNK]}
        ))
    items = [{"attendance_id": row_ids[row.record_id], "sha256": sha, "watched_seconds": w}
             for row in fresh for sha, w in row.items]
    executemany(conn, _INSERT_ITEM, items)
    attendees = [{"attendance_id": row_ids[row.record_id], "member_no": m,
                  "on_roster": int(m in on_roster)} for row in fresh for m in row.attendees]
    executemany(conn, _INSERT_MEMBER, attendees)
    counted.write(conn)
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


_FLAGGED = text(
    "SELECT a.terminal_id, a.record_id, t.village_code, v.name AS village_name, a.title, "
    "a.started_at, a.ended_at, a.reported_started_at, a.received_at, a.watched_seconds, "
    "a.flags, (SELECT COUNT(*) FROM attendance_members am WHERE am.attendance_id = a.id) "
    "AS attendees "
    "FROM attendance a JOIN terminals t ON t.id = a.terminal_id "
    "JOIN villages v ON v.code = t.village_code JOIN units u ON u.code = v.unit_code "
    "WHERE a.flags != '' AND a.confirmed_at IS NULL "
    f"AND {in_county('u.county_code')} ORDER BY a.received_at, a.id"
)

_FLAGGED_RECORD = text(
    "SELECT a.id, a.started_at, a.ended_at, a.received_at FROM attendance a "
    "JOIN terminals t ON t.id = a.terminal_id JOIN villages v ON v.code = t.village_code "
    "JOIN units u ON u.code = v.unit_code "
    "WHERE a.terminal_id = :terminal AND a.record_id = :record AND a.flags != '' "
    f"AND {in_county('u.county_code')}"
)

_CONFIRM = text(
    "UPDATE attendance SET started_at = :started_at, ended_at = :ended_at, held = 0, "
    "confirmed_at = :confirmed_at WHERE id = :id"
)


def flagged(conn: Connection, county: str | None = None) -> list[FlaggedRow]:
    """Flagged records not yet confirmed of the terminals of `county` (None: the
    province), oldest received first."""
    return [FlaggedRow(*r) for r in conn.execute(_FLAGGED, {"county": county})]


def flagged_record(conn: Connection, terminal_id: str, record_id: str, county: str | None = None
                   ) -> FlaggedRef | None:
    """A record that was flagged (confirmed or not), with its placement; None when there
    is none, or its terminal is not of `county` (None: the province)."""
    row = conn.execute(_FLAGGED_RECORD, {"terminal": terminal_id, "record": record_id,
                                         "county": county}).first()
    return None if row is None else FlaggedRef(*row)


def confirm(
    conn: Connection, attendance_id: int, started_at: str, ended_at: str, confirmed_at: str,
    basis: rollups.Basis,
) -> None:
    """A person placed the record: it counts from now on, at these times, with every attendee."""
    rollups.apply(conn, [attendance_id], basis, sign=-1)  # what it counted for until now
    conn.execute(_CONFIRM, {"started_at": started_at, "ended_at": ended_at,
                            "confirmed_at": confirmed_at, "id": attendance_id})
    rollups.apply(conn, [attendance_id], basis)

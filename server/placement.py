"""Placing an attendance record in time: as reported, corrected, or flagged.

A terminal's wall clock can be years off after a power cut, or step in a session. The
server counts each record at its *placement*, worked out here from what the record and
its batch carry (see `shared.protocol.AttendanceRecord`), best source first:

1. a clock anchor of the record's boot (the batch's own: the receive time against the
   sender's monotonic clock; or one the terminal learned from a heartbeat answer): the
   record's monotonic start becomes a true time, whatever the wall clock did;
2. a record that says its clock was confirmed by the server: its times as written;
3. a record from an older terminal (no clock fields): its times shifted by the batch's
   offset (receive time minus `terminal_clock`) when that is more than `CLOCK_TOLERANCE`;
4. otherwise the same shift as a suggestion, and the record is flagged
   `clock_unconfirmed`.

A placed record that ends after it was received (beyond `RECEIVE_SLACK`, plus
`CLOCK_TOLERANCE` unless an anchor placed it) is flagged `ends_after_received`; one
whose wall-clock end is before its start, `ends_before_start` (its length is then the
watched time). Flagged records are stored and listed, and count only once a person
confirms them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.protocol import AttendanceBatch, AttendanceRecord, ClockAnchor

CLOCK_TOLERANCE = timedelta(minutes=5)  # a clock this close to the server's is a good clock
RECEIVE_SLACK = timedelta(minutes=2)  # transit and rounding; a later end is impossible

CLOCK_UNCONFIRMED = "clock_unconfirmed"
ENDS_AFTER_RECEIVED = "ends_after_received"
ENDS_BEFORE_START = "ends_before_start"
NOT_ON_ROSTER = "not_on_roster"
REASONS = (CLOCK_UNCONFIRMED, ENDS_AFTER_RECEIVED, ENDS_BEFORE_START, NOT_ON_ROSTER)
TIME_REASONS = frozenset({CLOCK_UNCONFIRMED, ENDS_AFTER_RECEIVED, ENDS_BEFORE_START})


@dataclass(frozen=True)
class Placement:
    started_at: datetime
    ended_at: datetime
    reasons: tuple[str, ...]  # from TIME_REASONS; empty: counted as placed


def batch_anchors(batch: AttendanceBatch, received_at: datetime) -> dict[str, ClockAnchor]:
    """Anchors by boot id; the batch's own (taken at receipt) wins over a learned one."""
    anchors = {a.boot_id: a for a in batch.anchors}
    if batch.boot_id is not None and batch.monotonic is not None:
        anchors[batch.boot_id] = ClockAnchor(boot_id=batch.boot_id, monotonic=batch.monotonic,
                                             server_time=received_at)
    return anchors


def place(
    r: AttendanceRecord, terminal_clock: datetime, received_at: datetime,
    anchors: dict[str, ClockAnchor],
) -> Placement:
    try:
        return _place(r, terminal_clock, received_at, anchors)
    except OverflowError:  # times that cannot be real (beyond year 9999): keep, flag, let a person say
        reasons = [CLOCK_UNCONFIRMED, *([ENDS_BEFORE_START] if r.ended_at < r.started_at else [])]
        return Placement(started_at=r.started_at, ended_at=max(r.started_at, r.ended_at),
                         reasons=tuple(reasons))


def _place(
    r: AttendanceRecord, terminal_clock: datetime, received_at: datetime,
    anchors: dict[str, ClockAnchor],
) -> Placement:
    reasons: list[str] = []
    if r.started_monotonic is not None and r.ended_monotonic is not None \
            and r.ended_monotonic >= r.started_monotonic:
        length = timedelta(seconds=r.ended_monotonic - r.started_monotonic)
    elif r.ended_at >= r.started_at:
        length = r.ended_at - r.started_at
    else:
        length = timedelta(seconds=sum(i.watched_seconds for i in r.items))
    if r.ended_at < r.started_at:
        reasons.append(ENDS_BEFORE_START)
    offset = received_at - terminal_clock
    shifted = r.started_at + offset if abs(offset) > CLOCK_TOLERANCE else r.started_at
    anchor = anchors.get(r.boot_id) if r.boot_id is not None else None
    # a wall clock taken as good may be off by up to the tolerance: only an anchor is exact
    slack = RECEIVE_SLACK + CLOCK_TOLERANCE
    if anchor is not None and r.started_monotonic is not None:
        start = anchor.server_time + timedelta(seconds=r.started_monotonic - anchor.monotonic)
        slack = RECEIVE_SLACK
    elif r.clock_confirmed:
        start = r.started_at
    elif r.clock_confirmed is None and r.boot_id is None:
        start = shifted
    else:
        start = shifted
        reasons.append(CLOCK_UNCONFIRMED)
    end = start + length
    if end > received_at + slack:
        reasons.append(ENDS_AFTER_RECEIVED)
    return Placement(started_at=start, ended_at=end, reasons=tuple(reasons))

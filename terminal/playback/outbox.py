"""Delivering closed attendance records: exactly once in effect, and never given up.

Records leave in bounded batches, oldest sequence number first, each with its record
id and per-terminal sequence number. A record is deleted only once the server has
acknowledged its id; a lost acknowledgement just means the record is sent again, and
the server, idempotent per record id, answers "already held".

A record the server refuses is *held* (state 'quarantined': kept, never deleted, shown
in the status with the server's words) and the rest of its batch goes on. Nothing is
held for good: held records are offered again after a backoff (`retry_initial`,
doubling to `retry_max`), and at once when the outbox finds itself talking to another
server, until a server accepts them. A batch refused whole without naming records
(e.g. one record over a limit) is sent again record by record to find the ones to hold.

Each batch carries the sender's boot id and monotonic clock (the server's receive time
anchors this boot) and the clock anchors of the other boots its records name, so the
server can place records whose wall clock was wrong (`terminal.playback.clock`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import msgspec

from shared.protocol import AttendanceBatch, AttendanceRecord, WatchedItem
from shared.sqlite import Database
from shared.timeutil import from_db
from terminal import constants as k
from terminal.errors import ServerRefused
from terminal.network.client import ServerClient
from terminal.playback.clock import Clock
from terminal.storage import db as q

log = logging.getLogger(__name__)

# Answers that say "not these records" rather than "not now": anything else is retried
# whole (auth, rate limits, server errors) with the caller's backoff.
_NOT_NOW = {401, 403, 404, 408, 409, 429}


@dataclass
class Delivery:
    sent: int = 0
    duplicates: int = 0
    quarantined: int = 0
    batches: int = 0


def to_wire(row: q.RecordRow) -> AttendanceRecord:
    return AttendanceRecord(
        record_id=row.record_id, seq=row.seq, started_at=from_db(row.started_at),
        ended_at=from_db(row.ended_at),
        items=msgspec.json.decode(row.items, type=list[WatchedItem]),
        attendees=msgspec.json.decode(row.attendees, type=list[str]),
        session_id=row.session_id, title=row.title, clock_confirmed=row.clock_confirmed,
        boot_id=row.boot_id, started_monotonic=row.started_mono, ended_monotonic=row.ended_mono,
    )


class Outbox:
    def __init__(
        self, database: Database, *, batch: int = k.OUTBOX_BATCH, clock: Clock | None = None,
        retry_initial: float = k.HELD_RETRY_INITIAL, retry_max: float = k.HELD_RETRY_MAX,
    ) -> None:
        self._db = database
        self._batch = batch
        self._clock = clock or Clock(database)
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._retry_every = retry_initial
        self._retry_at: float | None = None  # monotonic; None: held records go at the next drain
        self._refused_by: str | None = None  # the server that refused them

    async def backlog(self) -> int:
        counts = await self._db.read(q.record_counts)
        return counts["closed"] + counts["open"]

    async def held(self) -> int:
        return (await self._db.read(q.record_counts))["quarantined"]

    def retry_in(self) -> float:
        """Seconds until held records are offered again (0: now)."""
        if self._retry_at is None:
            return 0.0
        return max(0.0, self._retry_at - self._clock.monotonic())

    async def due(self) -> bool:
        """Is there anything to send now?"""
        counts = await self._db.read(q.record_counts)
        return bool(counts["closed"] or (counts["quarantined"] and self.retry_in() == 0))

    async def drain(self, client: ServerClient) -> Delivery:
        """Send until nothing closed is left; ServerUnreachable/ServerRefused propagate."""
        done = Delivery()
        if await self.held() and (self.retry_in() == 0 or client.base_url != self._refused_by):
            released = await self._db.write(q.release_held)
            log.info("offering %d held record(s) again", released)
        while True:
            rows = await self._db.read(lambda c: q.closed_records(c, self._batch))
            if not rows:
                break
            await self._send(client, [to_wire(r) for r in rows], done)
        if done.quarantined:
            self._retry_at = self._clock.monotonic() + self._retry_every
            self._retry_every = min(self._retry_max, self._retry_every * 2)
            self._refused_by = client.base_url
        elif not await self.held():
            self._retry_every, self._retry_at, self._refused_by = self._retry_initial, None, None
        return done

    def _batch_of(self, records: list[AttendanceRecord]) -> AttendanceBatch:
        others = {r.boot_id for r in records if r.boot_id != self._clock.boot_id}
        return AttendanceBatch(
            terminal_clock=self._clock.now(), records=records, boot_id=self._clock.boot_id,
            monotonic=self._clock.monotonic(), anchors=self._clock.anchors_for(others),
        )

    async def _send(self, client: ServerClient, records: list[AttendanceRecord], done: Delivery) -> None:
        while records:
            try:
                ack = await client.attendance(self._batch_of(records))
            except ServerRefused as e:
                if e.status < 400 or e.status >= 500 or e.status in _NOT_NOW:
                    raise
                ids = {r.record_id for r in records}
                bad = [r for r in (str(x) for x in e.details.get("record_ids", [])) if r in ids]
                if not bad and len(records) > 1:
                    # refused whole without naming records: find them one by one
                    for r in records:
                        await self._send(client, [r], done)
                    return
                bad = bad or [records[0].record_id]
                why = str(e)[:500]
                log.error("server refused %d record(s) (%s): held to offer again later, the rest "
                          "sent again", len(bad), e.code)
                await self._db.write(partial(q.quarantine, record_ids=bad, refusal=why))
                done.quarantined += len(bad)
                records = [r for r in records if r.record_id not in set(bad)]
                continue
            accepted = [a for a in ack.accepted if a in {r.record_id for r in records}]
            await self._db.write(partial(q.delete_records, record_ids=accepted))
            done.sent += len(accepted)
            done.duplicates += ack.duplicates
            done.batches += 1
            if not accepted:
                raise ServerRefused(200, "nothing_accepted", "the server acknowledged none of the batch")
            return

"""Delivering closed attendance records: exactly once in effect.

Records leave in bounded batches, oldest sequence number first, each with its record
id and per-terminal sequence number. A record is deleted only once the server has
acknowledged its id; a lost acknowledgement just means the record is sent again, and
the server, idempotent per record id, answers "already held". Should the server say a
known id arrived with different contents (422 `record_conflict`), those ids are set
aside in quarantine (kept, never deleted, shown in the status) and the rest of the
batch is sent again without them. Weeks of records drain batch after batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import msgspec

from shared.protocol import AttendanceBatch, AttendanceRecord, WatchedItem
from shared.sqlite import Database
from shared.timeutil import from_db, utcnow
from terminal import constants as k
from terminal import db as q
from terminal.client import ServerClient
from terminal.errors import ServerRefused

log = logging.getLogger(__name__)

QUARANTINE_CODES = ("record_conflict", "invalid_record")


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
        session_id=row.session_id, title=row.title,
    )


class Outbox:
    def __init__(self, database: Database, *, batch: int = k.OUTBOX_BATCH) -> None:
        self._db = database
        self._batch = batch

    async def backlog(self) -> int:
        counts = await self._db.read(q.record_counts)
        return counts["closed"] + counts["open"]

    async def drain(self, client: ServerClient) -> Delivery:
        """Send until nothing closed is left; ServerUnreachable/ServerRefused propagate."""
        done = Delivery()
        while True:
            rows = await self._db.read(lambda c: q.closed_records(c, self._batch))
            if not rows:
                return done
            records = [to_wire(r) for r in rows]
            while records:
                try:
                    ack = await client.attendance(AttendanceBatch(terminal_clock=utcnow(), records=records))
                except ServerRefused as e:
                    bad = [str(r) for r in e.details.get("record_ids", [])]
                    ids = {r.record_id for r in records}
                    bad = [r for r in bad if r in ids]
                    if e.status != 422 or e.code not in QUARANTINE_CODES or not bad:
                        raise
                    log.error("server refused %d record(s) (%s): quarantined, the rest sent again",
                              len(bad), e.code)
                    await self._db.write(partial(q.quarantine, record_ids=bad))
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
                break

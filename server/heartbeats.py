"""Heartbeats written together.

A fleet of 2,000 terminals beating every minute sends more heartbeats than any other
request, and each one is a write. Written one by one, every beat costs its own
statements (and on PostgreSQL their round trips) in the single writer. Here the beats
that arrive while the writer is busy wait in one open batch; the writer takes the batch
whole and stores it with a few statements (`server.queries.fleet.record_heartbeats`),
then every beat in it is answered. A batch that fails (a terminal removed between its
look-up and the write, the database going away) is written again beat by beat, so one
bad beat fails alone and the others are stored.
"""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import Connection

from server.db import Database
from server.peer_leases import Leases
from server.queries.fleet import Beat, record_heartbeats


class _Batch:
    def __init__(self) -> None:
        self.beats: list[Beat] = []
        self.sealed = False  # taken by the writer: later beats open a new batch
        self.written: asyncio.Future[None] | None = None


class HeartbeatWriter:
    def __init__(self, db: Database, leases: Leases) -> None:
        self._db, self._leases = db, leases
        self._lock = threading.Lock()  # the loop adds beats, the writer thread seals
        self._open: _Batch | None = None

    async def record(self, beat: Beat) -> None:
        """Return once `beat` is committed; raise what its write raised."""
        with self._lock:
            batch = self._open
            if batch is None or batch.sealed:
                batch = self._open = _Batch()
                batch.written = asyncio.ensure_future(self._db.write(lambda c: self._write(c, batch)))
                # every caller may have gone: the failure is still taken, not left unread
                batch.written.add_done_callback(lambda f: f.cancelled() or f.exception())
            batch.beats.append(beat)
            written = batch.written
        assert written is not None
        try:
            # shielded: a caller that goes away must not cancel the others' write
            await asyncio.shield(written)
        except Exception:
            await self._db.write(lambda c: self._store(c, [beat]))

    def _write(self, conn: Connection, batch: _Batch) -> None:
        with self._lock:
            batch.sealed = True
        self._store(conn, batch.beats)

    def _store(self, conn: Connection, beats: list[Beat]) -> None:
        record_heartbeats(conn, beats)
        downloading: dict[str, list[str]] = {}
        for b in beats:  # the last beat of a terminal says what it still fetches
            downloading[b.terminal_id] = [i.sha256 for i in b.hb.cache if i.state == "downloading"]
        self._leases.renew(conn, downloading)

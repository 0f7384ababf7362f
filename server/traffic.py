"""Bytes of each content that left the county server through `/blobs/<sha256>`.

The blob handler counts every response it sent to the end (`add`); the counts are kept
in memory and added to the `content_egress` table every `flush_seconds` and at shutdown,
so serving a blob never waits on a database write. A crash loses at most one interval
of this statistic, never anything a person stored. Together with what terminals report
they took in from each other (heartbeats, `CachedItem.bytes_from_peers`), the console
shows per film how many bytes the county server sent and how many peers saved it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from server.db import Database
from server.queries import contents as q

log = logging.getLogger(__name__)

FLUSH_SECONDS = 10.0


class EgressCounter:
    """Per-sha256 byte counts, flushed to the database in the background."""

    def __init__(self, db: Database, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._db = db
        self._flush_seconds = flush_seconds
        self._pending: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    def add(self, sha256: str, count: int) -> None:
        """Count `count` bytes of `sha256` as sent (loop only; never blocks)."""
        if count > 0:
            self._pending[sha256] += count

    async def flush(self) -> None:
        """Add the counts so far to the database (one write)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, Counter()
        try:
            await self._db.write(lambda c: q.add_egress(c, dict(pending)))
        except Exception:
            self._pending.update(pending)  # kept for the next try (a full disk, say)
            raise

    def start(self) -> None:
        async def run() -> None:
            while True:
                await asyncio.sleep(self._flush_seconds)
                try:
                    await self.flush()
                except Exception as e:  # the statistic waits; serving goes on
                    log.warning("blob traffic not recorded yet: %s", e)

        self._task = asyncio.create_task(run(), name="egress-flush")

    async def async_close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()

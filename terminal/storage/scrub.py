"""The scrub: every cached file hashed again in the background, on a stated schedule.

A byte can change on the box's disk with nothing else changing (a failing card, a bad
sector, a hand): the size and the modification time stay, only the hash can tell. So:

* every ready file is hashed again at least every `interval` (7 days) after its last
  check. From `early` (3/4) of the interval on, idle time hashes it ahead of time, least
  recently checked first, so the checks are done in idle hours before their deadline
  rather than all at it, and a file rarely shows as unchecked. Once the interval has
  passed unchecked, the file is no longer "ready" but "verifying" — in the status, the
  heartbeat and so the county's fleet view — until the scrub hashed it;
* a scheduled session's items are hashed again `lead` (2 h) before it starts, so a bad
  file is fetched again in time, and once more right before each plays (`Cache.verify`
  in the session);
* a file whose size or modification time moved, or one left uncertain by an unclean
  shutdown, is "verifying" and is hashed first.

The cost is bounded: one file at a time, read at most `rate` bytes per second, and only
while no session runs; a session that begins stops the file being hashed between two
reads (it is hashed again from the start later). Files are taken in order: uncertain
ones needed by a coming session, other uncertain ones, the coming sessions' items, then
files past the early mark, each group least recently checked first. A file found bad
is removed and fetched again (`on_bad` wakes the downloads). Timings are constructor
parameters, with their defaults in `terminal.constants`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from shared.protocol import SessionPlan
from shared.sqlite import Database
from shared.timeutil import from_db, to_db, utcnow
from terminal import constants as k
from terminal.errors import NotReady, VerifyInterrupted
from terminal.storage import db as q
from terminal.storage.cache import Cache

log = logging.getLogger(__name__)


def shown_state(row: q.ItemRow, now: datetime, interval: float) -> str:
    """The state to report: "ready" only for a file hashed within `interval` seconds."""
    if row.state == "ready" and (
        row.verified_at is None or now - from_db(row.verified_at) > timedelta(seconds=interval)
    ):
        return "verifying"
    return row.state


class Scrubber:
    """Runs with `run()` (a daemon loop); `wake()` after a session ends or the catalog moved.

    `sessions()` gives the scheduled sessions in force; `idle()` is true while no session
    runs (it is also asked from the hashing thread, so it must only read a flag).
    """

    def __init__(
        self, database: Database, cache: Cache, *,
        sessions: Callable[[], Sequence[SessionPlan]], idle: Callable[[], bool],
        interval: float = k.SCRUB_INTERVAL, rate: int = k.SCRUB_RATE, poll: float = k.SCRUB_POLL,
        lead: float = k.SESSION_VERIFY_LEAD, early: float = k.SCRUB_EARLY,
        on_change: Callable[[], None] | None = None, on_bad: Callable[[], None] | None = None,
    ) -> None:
        self._db = database
        self._cache = cache
        self._sessions = sessions
        self._idle = idle
        self.interval = interval
        self.rate = rate
        self.poll = poll
        self.lead = timedelta(seconds=lead)
        self.early = timedelta(seconds=interval * early)
        self._on_change = on_change or (lambda: None)
        self._on_bad = on_bad or (lambda: None)
        self._wake = asyncio.Event()
        self._closing = False
        self.checked = 0  # files the scrub hashed and found good
        self.found_bad = 0  # files the scrub found corrupt or missing
        self.bytes_read = 0

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        """Stop a hash in progress at its next read (called before the loop is cancelled)."""
        self._closing = True
        self._wake.set()

    def _stop(self) -> bool:
        return self._closing or not self._idle()

    async def run(self) -> None:
        """Forever, until cancelled; after `close()` it hashes nothing more."""
        while True:
            delay = await self.step()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()

    async def step(self) -> float:
        """Mark what is due, hash what is due while idle; seconds until more may be due."""
        now = utcnow()
        changed, missing = await self._cache.mark_changed()
        due = await self._db.write(
            lambda c: q.mark_due(c, to_db(now - timedelta(seconds=self.interval)))
        )
        if due:
            log.info("scrub: %d cached file(s) not checked for %.0f s are verifying again",
                     due, self.interval)
        if changed or missing or due:
            self._on_change()
        if missing:
            self._on_bad()
        while not self._stop():
            sha = await self._next(utcnow())
            if sha is None:
                break
            await self._check(sha)
        return await self._until_due()

    async def _check(self, sha256: str) -> None:
        row = await self._db.read(lambda c: q.item(c, sha256))
        try:
            await self._cache.verify(sha256, rate=self.rate, stop=self._stop)
        except VerifyInterrupted:
            log.debug("scrub of %s gave way to a session", sha256[:12])
            return
        except NotReady as e:
            self.found_bad += 1
            log.warning("scrub: %s", e)
            self._on_change()
            self._on_bad()
            return
        self.checked += 1
        self.bytes_read += row.size if row else 0
        self._on_change()

    def _coming(self, now: datetime) -> list[SessionPlan]:
        """Sessions starting within `lead`, soonest first."""
        return sorted((s for s in self._sessions() if now <= s.starts_at <= now + self.lead),
                      key=lambda s: s.starts_at)

    async def _next(self, now: datetime) -> str | None:
        rows = {r.sha256: r for r in await self._db.read(q.items)}
        coming = self._coming(now)
        needed = [sha for s in coming for sha in s.items if sha in rows]

        def oldest(shas: Sequence[str]) -> str | None:
            found = sorted(dict.fromkeys(shas), key=lambda s: rows[s].verified_at or "")
            return found[0] if found else None

        uncertain = [sha for sha, r in rows.items() if r.state == "verifying"]
        first = oldest([sha for sha in needed if rows[sha].state == "verifying"]) or oldest(uncertain)
        if first is not None:
            return first
        # a coming session's item not hashed since its session came within `lead`
        stale = []
        for s in coming:
            since = to_db(s.starts_at - self.lead)
            stale += [sha for sha in s.items if sha in rows and rows[sha].state == "ready"
                      and (rows[sha].verified_at or "") < since]
        if (found := oldest(stale)) is not None:
            return found
        # ahead of time: a file past the early mark, before it falls due
        mark = to_db(now - self.early)
        return oldest([sha for sha, r in rows.items()
                       if r.state == "ready" and (r.verified_at or "") < mark])

    async def _until_due(self) -> float:
        """Seconds until a file passes the early mark or a session comes within `lead`, at
        most `poll`. (When not idle, files past the mark wait for the next wake or poll.)"""
        now = utcnow()
        rows = await self._db.read(q.items)
        delay = self.poll
        for r in rows:
            if r.state == "ready" and r.verified_at is not None:
                checked = from_db(r.verified_at)
                mark, due = checked + self.early, checked + timedelta(seconds=self.interval)
                delay = min(delay, ((mark if mark > now else due) - now).total_seconds())
        for s in self._sessions():
            if s.starts_at - self.lead > now:
                delay = min(delay, (s.starts_at - self.lead - now).total_seconds())
        return max(0.05, delay)

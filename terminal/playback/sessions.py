"""Sessions: sign members in, play the list, and record attendance as it happens.

A session opens a record in the outbox before the first item plays, saves it every
few seconds (watched seconds per item, attendees, the time reached) and closes it at
the end. The time reached is the start plus the length measured on the monotonic clock,
so a wall-clock step in a session never makes a record end before it starts; the record
also keeps its boot id, monotonic readings and whether the server had confirmed the
wall clock (`terminal.playback.clock`), for the server to place it. When the player process dies
mid-item, the session ends there: the record is closed with what was watched so far,
and `SessionResult.problem` says why.

The database runs WAL with synchronous=FULL, so a power cut loses at most one save
interval, never the record: on the next start an open record is closed with its last
saved values (`recover()`).

Attendees are signed in from the village roster by member number or by name; a name
shared by two members must be given as a member number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from shared.protocol import Member, WatchedItem
from shared.sqlite import Database
from shared.timeutil import to_db
from terminal import constants as k
from terminal.errors import NotReady, TerminalError
from terminal.playback.clock import Clock
from terminal.playback.player import Player
from terminal.storage import db as q
from terminal.storage.cache import Cache

log = logging.getLogger(__name__)


class SignInError(TerminalError):
    """A member reference that matches nobody, or more than one member."""


def resolve_attendees(refs: Sequence[str], roster: Sequence[Member]) -> list[str]:
    """Member numbers for `refs` (numbers or names), in order, without repeats."""
    by_no = {m.member_no: m for m in roster}
    by_name: dict[str, list[Member]] = {}
    for m in roster:
        by_name.setdefault(m.name, []).append(m)
    found: list[str] = []
    for ref in (r.strip() for r in refs):
        if not ref:
            continue
        if ref in by_no:
            found.append(ref)
        elif len(by_name.get(ref, [])) == 1:
            found.append(by_name[ref][0].member_no)
        elif by_name.get(ref):
            numbers = ", ".join(m.member_no for m in by_name[ref])
            raise SignInError(f"{ref} names several members ({numbers}); sign in by member number")
        elif not roster and ref.isdigit():
            found.append(ref)  # no roster fetched yet: numbers are taken on trust
        else:
            raise SignInError(f"{ref} is not in this village's roster")
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class SessionSpec:
    title: str
    items: list[str]
    session_id: str | None = None


@dataclass
class SessionResult:
    record_id: str
    seq: int
    started_at: datetime
    ended_at: datetime
    watched: dict[str, float]
    attendees: list[str]
    skipped: list[str] = field(default_factory=list)  # not verified: never given to the player
    stalls: int = 0
    errors: int = 0
    problem: str = ""  # why the session ended early (the player process was lost), in words


class Recorder:
    """The outbox's writing side: open, save, close."""

    def __init__(self, database: Database, clock: Clock | None = None) -> None:
        self._db = database
        self._clock = clock or Clock(database)
        self._starts: dict[str, tuple[datetime, float]] = {}  # record id -> wall, monotonic start

    async def recover(self) -> int:
        n = await self._db.write(q.close_open_records)
        if n:
            log.warning("closed %d session record(s) left open by an interruption", n)
        return n

    async def open(self, spec: SessionSpec, attendees: list[str]) -> tuple[str, int, datetime]:
        """A new open record starting now; returns its id, sequence number and start."""
        record_id = uuid.uuid4().hex
        people = msgspec.json.encode(attendees).decode()
        started, mono = self._clock.now(), self._clock.monotonic()
        when = to_db(started)
        stamp = q.RecordClock(boot_id=self._clock.boot_id, started_mono=mono,
                              confirmed=self._clock.confirmed())
        seq = await self._db.write(
            lambda c: q.open_record(c, record_id, spec.session_id, spec.title, when, people, stamp)
        )
        self._starts[record_id] = (started, mono)
        return record_id, seq, started

    async def save(
        self, record_id: str, watched: dict[str, float], attendees: list[str], *, close: bool = False,
    ) -> datetime:
        started, mono = self._starts[record_id]
        reached = self._clock.monotonic()
        now = started + timedelta(seconds=max(0.0, reached - mono))
        items = msgspec.json.encode(
            [WatchedItem(sha256=s, watched_seconds=round(min(w, 86_400), 3)) for s, w in watched.items()]
        ).decode()
        people = msgspec.json.encode(attendees).decode()
        when = to_db(now)
        await self._db.write(
            lambda c: q.save_record(c, record_id, when, items, people, close=close, ended_mono=reached)
        )
        if close:
            self._starts.pop(record_id, None)
        return now


class SessionRunner:
    """Plays one session at a time and keeps its record current."""

    def __init__(
        self, database: Database, cache: Cache, player: Player, *,
        save_seconds: float = k.SESSION_SAVE_SECONDS,
        on_closed: Callable[[], None] | None = None, on_not_ready: Callable[[str], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._db = database
        self._cache = cache
        self._player = player
        self._recorder = Recorder(database, clock)
        self._save_seconds = save_seconds
        self._on_closed = on_closed
        self._on_not_ready = on_not_ready
        self.current: SessionSpec | None = None
        self.attendees: list[str] = []
        self.last: SessionResult | None = None  # the last session closed, for the summary screen

    @staticmethod
    async def recover(database: Database) -> int:
        return await Recorder(database).recover()

    async def sign_in(self, refs: Sequence[str]) -> list[str]:
        roster = await self._db.read(q.roster)
        return resolve_attendees(refs, roster)

    def add_attendees(self, member_nos: Sequence[str]) -> None:
        """Late arrivals during a running session."""
        self.attendees = list(dict.fromkeys([*self.attendees, *member_nos]))

    async def run(self, spec: SessionSpec, attendees: Sequence[str]) -> SessionResult:
        if self.current is not None:
            raise TerminalError(f"session {self.current.title!r} is still running")
        self.current, self.attendees = spec, list(dict.fromkeys(attendees))
        record_id, seq, started = await self._recorder.open(spec, self.attendees)
        log.info("session %r started: record %s (seq %d), %d attendee(s)",
                 spec.title, record_id, seq, len(self.attendees))
        result = SessionResult(record_id=record_id, seq=seq, started_at=started, ended_at=started,
                               watched={}, attendees=self.attendees)
        saver = asyncio.create_task(self._keep_saving(record_id, result))
        try:
            for sha256 in spec.items:
                try:
                    media = await self._cache.verify(sha256)
                except NotReady as e:
                    log.warning("session %r skips %s: %s", spec.title, sha256[:12], e)
                    result.skipped.append(sha256)
                    if self._on_not_ready is not None:
                        self._on_not_ready(sha256)
                    continue
                await self._cache.mark_played(sha256)
                result.watched.setdefault(sha256, 0.0)
                base = result.watched[sha256]  # an item listed twice adds up
                task = asyncio.create_task(self._player.play(media))
                try:
                    while not task.done():
                        await asyncio.wait({task}, timeout=0.5)
                        live = self._player.stats
                        if live is not None and live.sha256 == sha256:
                            result.watched[sha256] = base + live.watched_seconds
                except asyncio.CancelledError:
                    await self._player.stop()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    raise
                stats = task.result()
                result.watched[sha256] = base + stats.watched_seconds
                result.stalls += stats.stalls
                result.errors += stats.errors
                if stats.lost:  # no player left: end the session with what was watched
                    result.problem = stats.lost
                    break
        finally:
            saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await saver
            result.attendees = self.attendees
            result.ended_at = await asyncio.shield(
                self._recorder.save(record_id, result.watched, self.attendees, close=True)
            )
            self.current = None
            self.last = result
            log.info("session %r closed: %s", spec.title,
                     ", ".join(f"{s[:12]} {w:.1f} s" for s, w in result.watched.items()) or "nothing played")
            if self._on_closed is not None:
                self._on_closed()
        return result

    async def _keep_saving(self, record_id: str, result: SessionResult) -> None:
        while True:
            await asyncio.sleep(self._save_seconds)
            await self._recorder.save(record_id, dict(result.watched), self.attendees)

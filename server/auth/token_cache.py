"""A memory of which terminal a token belongs to.

Every request of every terminal carries its token; looking each one up in the database
costs a thread round trip per request. A process starts knowing every live token
(`preload`, one statement), and a lookup is remembered for `ttl` seconds, or until
the token's own end (`valid_until`) if that comes first. Revoking or re-enrolling a
terminal forgets it at once in the process that did it; other server processes on the
same database notice within `recheck` seconds: at most that often, the cache reads the
database's revocation mark (`server.queries.revocations`) and forgets everything when it
has changed.
"""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import Connection

from server.db import Database
from server.queries.enrollment import live_tokens
from server.queries.revocations import revocation_mark
from shared.timeutil import utcnow

TTL_SECONDS = 600.0
RECHECK_SECONDS = 1.0
MAX_ENTRIES = 50_000  # a province of 20,000 terminals, a token or two each


class TokenCache:
    def __init__(self, ttl: float = TTL_SECONDS, recheck: float = RECHECK_SECONDS) -> None:
        self._ttl = ttl
        self._recheck = recheck
        self._entries: dict[str, tuple[str, float]] = {}
        self._mark: tuple[object, ...] | None = None
        self._checked = float("-inf")

    async def validate(self, db: Database) -> None:
        """Forget everything if a token was revoked anywhere since the last look (reads
        the database at most once per `recheck` seconds)."""
        now = time.monotonic()
        if now - self._checked < self._recheck:
            return
        self._checked = now
        mark = await db.read(revocation_mark)
        if mark != self._mark:
            self._entries.clear()
            self._mark = mark

    async def preload(self, db: Database) -> int:
        """Remember every live token at once (one statement), with the revocation mark
        read in the same snapshot; returns how many. A server process starts with it, so
        a fleet coming back after a restart is not 20,000 look-ups in its first minute."""
        now = utcnow()

        def read(conn: Connection) -> tuple[tuple[object, ...], list[tuple[str, str, datetime | None]]]:
            return revocation_mark(conn), live_tokens(conn, now)

        mark, tokens = await db.read(read)
        self._entries.clear()
        self._mark, self._checked = mark, time.monotonic()
        for token_hash, terminal_id, until in tokens[:MAX_ENTRIES]:
            self.put(token_hash, terminal_id, None if until is None else (until - now).total_seconds())
        return min(len(tokens), MAX_ENTRIES)

    def get(self, token_hash: str) -> str | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        terminal_id, until = entry
        if time.monotonic() >= until:
            del self._entries[token_hash]
            return None
        return terminal_id

    def put(self, token_hash: str, terminal_id: str, lasts: float | None = None) -> None:
        """Remember a lookup for `ttl` seconds, or `lasts` seconds (the token's own time
        left) if that is shorter."""
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        keep = self._ttl if lasts is None else min(self._ttl, lasts)
        self._entries[token_hash] = (terminal_id, time.monotonic() + keep)

    def forget_terminal(self, terminal_id: str) -> None:
        for key in [k for k, (tid, _) in self._entries.items() if tid == terminal_id]:
            del self._entries[key]

"""A short-lived memory of which terminal a token belongs to.

Every blob request of every terminal carries its token; looking each one up in the
database costs a thread round trip per request. A lookup is remembered for a few
seconds, and revoking or re-enrolling a terminal forgets it at once, so a revoked
terminal is refused from the next request on.
"""

from __future__ import annotations

import time

TTL_SECONDS = 10.0
MAX_ENTRIES = 10_000


class TokenCache:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[str, float]] = {}

    def get(self, token_hash: str) -> str | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        terminal_id, until = entry
        if time.monotonic() >= until:
            del self._entries[token_hash]
            return None
        return terminal_id

    def put(self, token_hash: str, terminal_id: str) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[token_hash] = (terminal_id, time.monotonic() + self._ttl)

    def forget_terminal(self, terminal_id: str) -> None:
        for key in [k for k, (tid, _) in self._entries.items() if tid == terminal_id]:
            del self._entries[key]

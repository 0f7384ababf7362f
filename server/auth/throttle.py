"""Login throttling: after `max_failures` wrong passwords for one user from one address,
every attempt gets 429 until `cooldown` seconds have passed since the last failure; then
the right password works again. State is in memory: a restart forgives, which is fine
for a county console behind its own network."""

from __future__ import annotations

import time
from collections import defaultdict

MAX_TRACKED = 100_000


class LoginThrottle:
    def __init__(self, max_failures: int, cooldown: float) -> None:
        self._max = max_failures
        self._cooldown = cooldown
        self._failures: dict[tuple[str, str], list[float]] = defaultdict(list)

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until this user may try again from this address; 0 if now."""
        key, now = (username.lower(), address), time.monotonic()
        recent = [t for t in self._failures.get(key, []) if now - t < self._cooldown]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        if len(recent) < self._max:
            return 0.0
        return recent[-1] + self._cooldown - now

    def failed(self, username: str, address: str) -> None:
        if len(self._failures) > MAX_TRACKED:  # bounded memory under a spray of names
            self._failures.clear()
        self._failures[(username.lower(), address)].append(time.monotonic())

    def succeeded(self, username: str, address: str) -> None:
        self._failures.pop((username.lower(), address), None)

"""A token bucket for the download bandwidth cap."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """`await take(n)` returns when n more bytes fit under `rate` bytes per second."""

    def __init__(self, rate: int, burst_seconds: float = 0.25) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._burst = burst_seconds
        self._due = time.monotonic()

    async def take(self, n: int) -> None:
        now = time.monotonic()
        # idle time earns at most a short burst, never a flood
        self._due = max(self._due, now - self._burst) + n / self.rate
        if self._due > now:
            await asyncio.sleep(self._due - now)

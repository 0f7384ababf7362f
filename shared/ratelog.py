"""Logging for errors that repeat: the first occurrence is logged, the rest are counted.

A full disk answers every heartbeat with 507 and a connection flood closes thousands of
sockets; one log line per event would bury the log (and fill the disk it reports on).
`RepeatingLog.event(key, message)` logs the first event of each key in full, then only
counts; at most once per `summary_seconds` a key that happened again gets one summary
line with the count. Memory is bounded: at most `max_keys` keys are tracked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

SUMMARY_SECONDS: Final = 300.0
MAX_KEYS: Final = 256


@dataclass
class _Seen:
    total: int
    unreported: int
    last_report: float


class RepeatingLog:
    def __init__(
        self, logger: logging.Logger, *, summary_seconds: float = SUMMARY_SECONDS,
        max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._summary = summary_seconds
        self._max_keys = max_keys
        self._clock = clock
        self._seen: dict[str, _Seen] = {}

    def event(self, key: str, message: str, *args: object, level: int = logging.WARNING,
              exc_info: BaseException | None = None) -> None:
        """Record one occurrence of `key`; logs `message % args` only if it is news."""
        now = self._clock()
        seen = self._seen.get(key)
        if seen is None:
            if len(self._seen) >= self._max_keys:
                self._seen.pop(next(iter(self._seen)))
            self._seen[key] = _Seen(total=1, unreported=0, last_report=now)
            self._log.log(level, message + " (further occurrences are counted, not logged)",
                          *args, exc_info=exc_info)
            return
        seen.total += 1
        seen.unreported += 1
        if now - seen.last_report >= self._summary:
            self._log.log(level, "%s: %d more time(s) in the last %.0f s (%d in all)", key,
                          seen.unreported, now - seen.last_report, seen.total)
            seen.unreported, seen.last_report = 0, now

    def count(self, key: str) -> int:
        """How many times `key` happened since it was first seen (0 if never)."""
        seen = self._seen.get(key)
        return seen.total if seen is not None else 0

    def counts(self) -> dict[str, int]:
        return {key: seen.total for key, seen in self._seen.items()}

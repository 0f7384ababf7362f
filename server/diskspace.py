"""The server's data disk: how much is free, whether it is full, and what a full disk
means for requests.

Two thresholds, from the settings:

* `min_free_bytes` (default 512 MiB): uploads that would eat into it get 507 up front.
* `write_reserve_bytes` (default 64 MiB): at or below it the disk counts as full. Terminal
  writes (heartbeat, attendance, token rotation, enrollment) then get 507 with
  `Retry-After` before anything touches the database, so SQLite never meets a full disk
  half-way through a transaction and the terminal keeps the records in its outbox.

Should the disk still fill under a write (another program, a reserve of 0), the
`sqlite3` "database or disk is full" error and `OSError(ENOSPC)` are answered as the same
507, never as a 500; SQLite rolls the transaction back, so nothing stored is harmed. The
fleet summary reports `server_disk_full` and `server_free_bytes` from here.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web
from sqlalchemy.exc import DBAPIError

from server.errors import InsufficientStorage
from shared.ratelog import RepeatingLog

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS: Final = 300  # what a terminal is told to wait on a full disk
FULL_MEMORY_SECONDS: Final = 60.0  # a write that hit a full disk keeps "full" this long
# A reading this far above the reserve is trusted for a second: a fleet's heartbeats then
# cost one statvfs a second, not a thread hop each. Nearer the reserve, every write looks.
ROOMY_BYTES: Final = 1 << 30
ROOMY_SECONDS: Final = 1.0
TERMINAL_WRITES: Final = ("/api/v1/terminals/", "/api/v1/enroll")
_SQLITE_FULL: Final = 13
_POSTGRESQL_DISK_FULL: Final = "53100"


@dataclass(frozen=True)
class DiskStatus:
    free_bytes: int  # free for an unprivileged writer, as statvfs reports it
    full: bool


def is_disk_full_error(e: BaseException) -> bool:
    """ENOSPC/EDQUOT from the OS, SQLite's "database or disk is full" (SQLITE_FULL), or
    PostgreSQL's disk_full (SQLSTATE 53100), bare or wrapped by SQLAlchemy."""
    if isinstance(e, DBAPIError):
        return is_disk_full_error(e.orig) if isinstance(e.orig, BaseException) else False
    if isinstance(e, sqlite3.Error):
        return getattr(e, "sqlite_errorcode", None) == _SQLITE_FULL or "disk is full" in str(e)
    if getattr(e, "sqlstate", None) == _POSTGRESQL_DISK_FULL:
        return True
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


class DiskWatch:
    def __init__(
        self, data_dir: Path, reserve_bytes: int, *, retry_after: int = RETRY_AFTER_SECONDS,
        full_memory_seconds: float = FULL_MEMORY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dir = data_dir
        self._reserve = reserve_bytes
        self._retry_after = retry_after
        self._memory = full_memory_seconds
        self._clock = clock
        self._full_seen: float | None = None
        self._roomy_at: float | None = None  # when statvfs last found ROOMY_BYTES to spare
        self.repeats = RepeatingLog(log)

    def _free(self) -> int:
        return shutil.disk_usage(self._dir).free

    def note_full(self) -> None:
        """A write just failed for want of space (whatever statvfs says now)."""
        self._full_seen = self._clock()

    async def async_status(self) -> DiskStatus:
        free = await asyncio.to_thread(self._free)
        recent = self._full_seen is not None and self._clock() - self._full_seen < self._memory
        return DiskStatus(free_bytes=free, full=free <= self._reserve or recent)

    def refusal(self) -> InsufficientStorage:
        return InsufficientStorage(
            "The server's disk is full; nothing from this request was stored. Retry later (the "
            "county admin has to free space).",
            details={"retry_after_seconds": self._retry_after},
            headers={"Retry-After": str(self._retry_after)},
        )

    async def check_terminal_write(self, request: web.Request) -> None:
        """Refuse (507, Retry-After) a terminal write while the disk is at its reserve."""
        if request.method == "POST" and request.path.startswith(TERMINAL_WRITES):
            now = self._clock()
            if self._roomy_at is not None and now - self._roomy_at < ROOMY_SECONDS:
                return
            free = await asyncio.to_thread(self._free)
            self._roomy_at = now if free > self._reserve + ROOMY_BYTES else None
            if free <= self._reserve:
                self.repeats.event(
                    "terminal write refused", "disk full (%d bytes free, reserve %d): "
                    "refusing terminal writes with 507", free, self._reserve)
                raise self.refusal()

    def full_disk_refusal(self, request: web.Request, e: Exception) -> InsufficientStorage | None:
        """The 507 for an error that means the disk filled under a write, else None."""
        if not is_disk_full_error(e):
            return None
        self.note_full()
        self.repeats.event("write hit a full disk", "a write hit a full disk on %s %s: %s",
                           request.method, request.path, e)
        return self.refusal()

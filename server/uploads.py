"""Where tus uploads live while they arrive: `uploads/<id>.part` plus a database row.

A full disk does not throw an upload away. When a write hits ENOSPC the `.part` file is
cut back to the last offset whose bytes are really there and fsynced (the whole blocks
written before the error, else the offset the PATCH started from), that offset is
recorded, and the upload stays: HEAD answers it and a PATCH resumes from it once space is
free.

Expiry rule: an unfinished upload is removed `upload_expiry_hours` (default 72) after it
was created, or after a full disk last cut it short, whichever is later, so a stalled
upload keeps its bytes for the admin's clean-up. The sweep runs at start-up and hourly;
it also removes `.part` files that have no upload row (left by a crash between creating
the file and recording it) once they are older than the same expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from server.config import ServerConfig
from server.ingest import Ingestor
from server.queries import uploads as q
from shared.sqlite import Database
from shared.timeutil import utcnow

log = logging.getLogger(__name__)

SPARE_BYTES = 1 << 20  # given back by a cut upload so the database can record its offset


@dataclass
class UploadState:
    """In-memory state of one upload; rebuilt from the .part file after a restart."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    hasher: hashlib._Hash | None = None
    hashed_to: int = 0


class UploadManager:
    def __init__(self, db: Database, config: ServerConfig, ingestor: Ingestor) -> None:
        self._db = db
        self._config = config
        self._ingestor = ingestor
        self.dir = config.uploads_dir
        self._states: dict[str, UploadState] = {}

    def part(self, upload_id: str) -> Path:
        return self.dir / f"{upload_id}.part"

    def state(self, upload_id: str) -> UploadState:
        return self._states.setdefault(upload_id, UploadState())

    def forget(self, upload_id: str) -> None:
        self._states.pop(upload_id, None)

    def free_bytes(self) -> int:
        """Space an upload may still take (blocking: statvfs; call it from a thread)."""
        return shutil.disk_usage(self.dir).free - self._config.min_free_bytes

    async def remove(self, upload_id: str) -> None:
        # The file goes first: on a full disk that frees the space the row delete needs.
        await asyncio.to_thread(self.part(upload_id).unlink, True)
        await self._db.write(lambda c: q.delete(c, upload_id))
        self.forget(upload_id)

    async def remove_expired(self) -> int:
        """Remove expired unfinished uploads and stray `.part` files; returns how many."""
        ids = await self._db.read(lambda c: q.expired(c, utcnow()))
        for upload_id in ids:
            if not self.state(upload_id).lock.locked():
                await self.remove(upload_id)
        known = set(await self._db.read(q.unfinished_ids))
        max_age = self._config.upload_expiry_hours * 3600

        def strays() -> int:
            removed, now = 0, time.time()
            for part in self.dir.glob("*.part"):
                with contextlib.suppress(FileNotFoundError):
                    if part.stem not in known and now - part.stat().st_mtime > max_age:
                        part.unlink()
                        removed += 1
            return removed

        return len(ids) + await asyncio.to_thread(strays)

    async def cut_back(
        self, upload_id: str, state: UploadState, durable: int, written: int,
        hasher_at_written: hashlib._Hash,
    ) -> int:
        """After a write hit a full disk: keep the upload, cut back to what is really there.

        `durable` is the recorded offset the PATCH started from; `written` the end of the
        whole blocks the writer finished, whose hash `hasher_at_written` holds (pass
        `written == durable` when the chunk must be all or nothing). `state` must hold the
        hash at `durable`. If the database cannot record `written` (it shares the full
        disk), one more block is given back to make room, then the upload falls back to
        `durable`. Returns the offset now recorded; on return `state` matches it.
        """
        path = self.part(upload_id)

        def holds(size: int) -> bool:
            try:
                return path.stat().st_size >= size
            except OSError:
                return False

        targets = []
        if written > durable and await asyncio.to_thread(holds, written):
            targets = [written, max(durable, written - SPARE_BYTES)]
        expires = utcnow() + timedelta(hours=self._config.upload_expiry_hours)

        async def record(offset: int) -> bool:
            try:
                await asyncio.to_thread(_truncate, path, offset)
                await self._db.write(
                    lambda c: q.set_offset_after_full_disk(c, upload_id, offset, expires))
            except Exception:
                return False
            return True

        kept = durable
        for target in dict.fromkeys(targets):
            if target != durable and await record(target):
                kept = target
                break
        if kept == durable:
            await asyncio.to_thread(_truncate, path, durable)
        elif kept == written:
            state.hasher, state.hashed_to = hasher_at_written, kept
        else:
            state.hasher = None  # the next PATCH hashes the kept bytes again from disk
        log.warning("upload %s: the disk is full; kept %d bytes for resuming", upload_id, kept)
        return kept


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)
        os.fsync(f.fileno())

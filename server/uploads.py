"""Where tus uploads live while they arrive: `uploads/<id>.part` plus a database row."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from server.config import ServerConfig
from server.ingest import Ingestor
from server.queries import uploads as q
from shared.sqlite import Database
from shared.timeutil import utcnow


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
        ids = await self._db.read(lambda c: q.expired(c, utcnow()))
        for upload_id in ids:
            if not self.state(upload_id).lock.locked():
                await self.remove(upload_id)
        return len(ids)

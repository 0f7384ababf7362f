"""Turning a fully received file into content: probe, poster, store, record.

Nothing is stored unless every step succeeds: a file that is not a playable video is
removed and the caller gets the reason. When the store cannot be reached
(`StoreUnavailable`, a bucket down) the file is kept where it was, for a later try.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sqlalchemy import Connection

from server.db import Database
from server.media import probe
from server.media.store import BlobStore
from server.queries import contents as q
from server.queries import pieces
from shared.files import fsync_file
from shared.hashing import sha256_file
from shared.pieces import PIECE_SIZE, piece_hashes
from shared.protocol import ContentKind

log = logging.getLogger(__name__)


class NotAVideo(Exception):
    """The file cannot be distributed; the message says why, for the person uploading;
    `code` and `details` are the error table's (server/messages.py)."""

    def __init__(self, message: str, code: str = "not_a_video",
                 details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


@dataclass(frozen=True)
class ContentMeta:
    title: str
    kind: ContentKind
    description: str = ""
    filename: str = ""


@dataclass(frozen=True)
class Ingested:
    content_id: str
    sha256: str
    created: bool


class Ingestor:
    def __init__(self, db: Database, store: BlobStore, scratch: Path, timeout: float,
                 piece_size: int = PIECE_SIZE) -> None:
        self._db = db
        self._piece_size = piece_size
        self._store = store
        self._scratch = scratch
        self._timeout = timeout

    async def ingest(self, path: Path, sha256: str, size: int, meta: ContentMeta,
                     county: str | None = None) -> Ingested:
        """Take ownership of `path` (fsynced, hashed): it ends in the store or is removed;
        on StoreUnavailable it stays where it is (nothing recorded), to be ingested again.
        A new content is `county`'s own (None: the province's); bytes already held keep
        the content they are (`created` False), whoever's it is."""
        try:
            info = await probe.probe(path, self._timeout)
            await probe.check_decodes(path, self._timeout)
        except probe.ProbeError as e:
            await asyncio.to_thread(path.unlink, True)
            raise NotAVideo(str(e), e.code, e.details) from None
        poster_sha, poster_size = await self._poster(path, info.duration_seconds)
        # one more read of the file, so the catalog names every piece from the start
        hashes = await asyncio.to_thread(piece_hashes, path, self._piece_size)
        await asyncio.to_thread(self._store.put, path, sha256)
        new = q.NewContent(
            sha256=sha256, size=size, title=meta.title, kind=meta.kind.value,
            description=meta.description, original_filename=meta.filename,
            duration_seconds=info.duration_seconds, container=info.container,
            video_codec=info.video_codec, audio_codec=info.audio_codec, width=info.width,
            height=info.height, poster_sha256=poster_sha, poster_size=poster_size, county=county,
        )
        piece_size = self._piece_size

        def record(c: Connection) -> tuple[str, bool]:
            pieces.store(c, sha256, piece_size, hashes)
            return q.add_content(c, new)

        content_id, created = await self._db.write(record)
        log.info("content %s (%s): %s, %.1f s, %d bytes%s", content_id, sha256[:12], meta.title,
                 info.duration_seconds, size, "" if created else " (already held)")
        return Ingested(content_id=content_id, sha256=sha256, created=created)

    async def ingest_local(self, src: Path, meta: ContentMeta) -> Ingested:
        """Copy a file on this machine into the store (the seed and `add` command use it)."""
        fd, tmp = tempfile.mkstemp(dir=self._scratch, suffix=".part")
        os.close(fd)
        target = Path(tmp)

        def copy() -> tuple[str, int]:
            with open(src, "rb") as fin, open(target, "wb") as fout:
                while block := fin.read(1 << 20):
                    fout.write(block)
            fsync_file(target)
            return sha256_file(target), target.stat().st_size

        try:
            sha, size = await asyncio.to_thread(copy)
        except BaseException:
            await asyncio.to_thread(target.unlink, True)
            raise
        return await self.ingest(target, sha, size, meta)

    async def _poster(self, path: Path, duration: float) -> tuple[str | None, int | None]:
        fd, tmp = tempfile.mkstemp(dir=self._scratch, suffix=".jpg")
        os.close(fd)
        out = Path(tmp)
        try:
            if not await probe.extract_poster(path, duration, out, self._timeout):
                return None, None

            def finish() -> tuple[str, int]:
                fsync_file(out)
                sha, size = sha256_file(out), out.stat().st_size
                self._store.put(out, sha)
                return sha, size

            return await asyncio.to_thread(finish)
        finally:
            await asyncio.to_thread(out.unlink, True)


async def backfill_pieces(db: Database, store: BlobStore, piece_size: int, scratch: Path) -> int:
    """Hash the pieces of every content stored before piece hashes existed (one file at a
    time, on a thread; from a bucket, fetched into `scratch` first); returns how many were
    done. Safe to run again or to stop."""
    done = 0

    def hash_one(sha256: str) -> list[str]:
        with store.local_file(sha256, scratch) as path:
            return piece_hashes(path, piece_size)

    for sha256 in await db.read(pieces.missing):
        try:
            hashes = await asyncio.to_thread(hash_one, sha256)
        except FileNotFoundError:
            log.error("content %s is missing from the media store; no piece hashes", sha256[:12])
            continue
        await db.write(partial(pieces.store, sha256=sha256, piece_size=piece_size, hashes=hashes))
        done += 1
    if done:
        log.info("piece hashes computed for %d earlier content file(s)", done)
    return done

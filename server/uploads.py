"""The upload domain: where tus uploads live while they arrive, `uploads/<id>.part` plus a
database row, behind one small interface (`Uploads`: create, get, append, terminate,
remove_expired). The tus handler (`server.api.tus`) parses headers and calls it; every
rule about the bytes lives here.

Appending: the body streams to the `.part` file on a worker thread; the running sha256 of
the whole file is kept as bytes arrive, and the offset is recorded only after the bytes
are fsynced, so the offset answered after a crash or restart has its bytes really on
disk. A PATCH cut off mid-way keeps what arrived (the client resumes from there), unless
it carried a checksum, which can only be checked on the whole chunk. When the last byte
arrives the file is probed and ingested (`server.ingest`), and the upload row points at
the content.

A full disk does not throw an upload away. When a write hits ENOSPC the `.part` file is
cut back to the last offset whose bytes are really there and fsynced (the whole blocks
written before the error, else the offset the PATCH started from), that offset is
recorded, and the upload stays: HEAD answers it and a PATCH resumes from it once space is
free.

A media store that does not answer (the bucket of `media_store = "s3"` down) does not
throw an upload away either: the last PATCH is answered 503 `store_unavailable` with
Retry-After, the whole `.part` file and its row stay (offset = length, no content yet),
and the upload is stored when the bucket answers again: by the client's next PATCH at
that offset (an empty body is enough) or, without any client, by `store_pending`, which
the server runs every `store_retry_seconds`.

Several server processes may share one data directory: every answer comes from the
database (HEAD on one process sees what a PATCH on another recorded), and a PATCH holds
an exclusive lock on its `.part` file (`flock`), so two processes never write one upload
at once: the second gets 409 like a second PATCH on the same process.

Expiry rule: an unfinished upload is removed `upload_expiry_hours` (default 72) after it
was created, or after a full disk last cut it short, whichever is later, so a stalled
upload keeps its bytes for the admin's clean-up. The sweep runs at start-up and hourly;
it also removes `.part` files that have no upload row (left by a crash between creating
the file and recording it) once they are older than the same expiry.

Errors are the server's own (`server.errors`), with the codes the console and terminals
know: 400 bad metadata or a cut checksummed chunk, 404/410 unknown or expired upload,
409 offset mismatch / busy / complete, 413 too large, 422 not a video, 460 checksum
mismatch, 507 full disk (details carry the kept `offset`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Final, Protocol

from aiohttp.http_exceptions import HttpProcessingError

from server.config import ServerConfig
from server.db import Database
from server.errors import (
    BadRequest,
    ChecksumMismatch,
    Conflict,
    Gone,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    ServerError,
    ServiceUnavailable,
    Unprocessable,
)
from server.ingest import ContentMeta, Ingestor, NotAVideo
from server.media.store import StoreUnavailable
from server.queries import contents, new_id
from server.queries import uploads as q
from server.queries.uploads import UploadRow
from shared.files import fsync_dir
from shared.hashing import update_from_file
from shared.protocol import ContentKind
from shared.timeutil import utcnow

log = logging.getLogger(__name__)

SPARE_BYTES: Final = 1 << 20  # given back by a cut upload so the database can record its offset
WRITE_BLOCK: Final = 1 << 20  # bytes handed to the writer thread at a time
MAX_METADATA: Final = 16 * 1024
MAX_FILENAME: Final = 255
CHECKSUMS: Final = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}

__all__ = ["CHECKSUMS", "Appended", "Body", "Checksum", "UploadRow", "Uploads", "content_meta",
           "parse_metadata"]


class Body(Protocol):
    """A request body read in pieces (aiohttp's `StreamReader`); b"" at its end."""

    async def readany(self) -> bytes: ...


@dataclass(frozen=True)
class Checksum:
    """A chunk's expected digest: `algorithm` one of CHECKSUMS, `digest` raw bytes."""

    algorithm: str
    digest: bytes


@dataclass(frozen=True)
class Appended:
    """What a PATCH left: the durable `offset`; when it completed the upload, the
    `content_id` it became and the file's `sha256` (hex)."""

    offset: int
    content_id: str | None = None
    sha256: str | None = None


@dataclass
class UploadState:
    """In-memory state of one upload; rebuilt from the .part file after a restart."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    hasher: hashlib._Hash | None = None
    hashed_to: int = 0


# --- content rules -------------------------------------------------------------------


def parse_metadata(raw: str | None) -> dict[str, str]:
    """tus Upload-Metadata (`key base64value` pairs, comma-separated) -> key: text.

    Raises BadRequest for more than MAX_METADATA bytes, a malformed pair, a repeated key
    or a value that is not base64 of UTF-8."""
    meta: dict[str, str] = {}
    if not raw:
        return meta
    if len(raw) > MAX_METADATA:
        raise BadRequest(f"Upload-Metadata is longer than {MAX_METADATA} bytes")
    for pair in raw.split(","):
        parts = pair.strip().split(" ")
        if len(parts) not in (1, 2) or not parts[0]:
            raise BadRequest("Upload-Metadata must be comma-separated 'key base64value' pairs")
        key = parts[0]
        if key in meta:
            raise BadRequest(f"Upload-Metadata has the key {key!r} twice")
        try:
            value = base64.b64decode(parts[1], validate=True).decode("utf-8") if len(parts) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text") from None
        meta[key] = value
    return meta


def _display_name(raw: str) -> str:
    """The client's file name is display text only: check it, keep its last component."""
    if "\x00" in raw:
        raise BadRequest("the file name contains a NUL byte")
    if len(raw) > MAX_FILENAME:
        raise BadRequest(f"the file name is longer than {MAX_FILENAME} characters")
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return "".join(ch for ch in name if ch.isprintable())


def content_meta(meta: dict[str, str]) -> ContentMeta:
    """The content an upload will become: title (from `title`, else the file name), kind,
    description, display file name. Raises BadRequest naming the rule broken."""
    filename = _display_name(meta.get("filename", meta.get("name", "")))
    title = meta.get("title", "").strip() or os.path.splitext(filename)[0].strip()
    if not title:
        raise BadRequest("give the upload a title (Upload-Metadata 'title' or 'filename')")
    if len(title) > 200 or "\x00" in title:
        raise BadRequest("the title must be at most 200 characters, without NUL bytes")
    description = meta.get("description", "")
    if len(description) > 4000 or "\x00" in description:
        raise BadRequest("the description must be at most 4000 characters, without NUL bytes")
    kind_raw = meta.get("kind", ContentKind.FEATURE_FILM.value)
    try:
        kind = ContentKind(kind_raw)
    except ValueError:
        allowed = ", ".join(k.value for k in ContentKind)
        raise BadRequest(f"kind {kind_raw!r} is not one of {allowed}") from None
    return ContentMeta(title=title, kind=kind, description=description, filename=filename)


def _mb(size: int) -> str:
    return f"{size / (1 << 20):,.1f} MB"


def _disk_full(offset: int) -> InsufficientStorage:
    return InsufficientStorage(
        f"The server's disk is full; the upload is kept up to byte {offset}. Ask the county admin "
        "to free space, then resume (HEAD, then PATCH from Upload-Offset).",
        details={"offset": offset}, headers={"Upload-Offset": str(offset)},
    )


# --- the domain ----------------------------------------------------------------------


class Uploads:
    """All tus uploads of one server: `uploads_dir` of the config plus the `uploads` table."""

    def __init__(self, db: Database, config: ServerConfig, ingestor: Ingestor) -> None:
        self._db = db
        self._config = config
        self._ingestor = ingestor
        self.dir = config.uploads_dir
        self._states: dict[str, UploadState] = {}

    @property
    def max_bytes(self) -> int:
        return self._config.max_upload_bytes

    def part(self, upload_id: str) -> Path:
        return self.dir / f"{upload_id}.part"

    def _state(self, upload_id: str) -> UploadState:
        return self._states.setdefault(upload_id, UploadState())

    def _forget(self, upload_id: str) -> None:
        self._states.pop(upload_id, None)

    def free_bytes(self) -> int:
        """Space an upload may still take (blocking: statvfs; call it from a thread)."""
        return shutil.disk_usage(self.dir).free - self._config.min_free_bytes

    async def create(self, length: int, raw_metadata: str | None, county: str | None = None
                     ) -> tuple[str, datetime]:
        """A new empty upload of `length` bytes, made by `county`'s account (None: the
        province's); returns its id and expiry (UTC). The content it becomes is that
        county's own (see `server.queries.contents.USABLE`).

        The metadata is checked now, not after the upload (400); an empty file is 400
        `empty_file`, one over `max_upload_bytes` 413 `upload_too_large`, one the disk
        cannot hold 507."""
        config = self._config
        if length == 0:
            raise BadRequest("the file is empty (Upload-Length: 0); choose the video file again",
                             code="empty_file")
        if length > config.max_upload_bytes:
            raise PayloadTooLarge(
                f"the file is {_mb(length)}; the largest upload accepted is {_mb(config.max_upload_bytes)}: "
                "shorten the video or export it at a lower bit rate (H.264 MP4), then upload again",
                code="upload_too_large",
                details={"size": _mb(length), "limit": _mb(config.max_upload_bytes)},
            )
        content_meta(parse_metadata(raw_metadata))
        if length > await asyncio.to_thread(self.free_bytes):
            raise InsufficientStorage(
                f"not enough disk space on the server for {length} bytes; ask the county admin to "
                "free space in the media store"
            )
        upload_id = new_id()
        now = utcnow()
        expires = now + timedelta(hours=config.upload_expiry_hours)

        def touch() -> None:
            self.dir.mkdir(parents=True, exist_ok=True)
            with open(self.part(upload_id), "xb") as f:
                os.fsync(f.fileno())
            fsync_dir(self.dir)

        await asyncio.to_thread(touch)
        await self._db.write(
            lambda c: q.create(c, upload_id, length, raw_metadata or "", now, expires, county))
        return upload_id, expires

    async def get(self, upload_id: str, county: str | None = None) -> UploadRow:
        """The upload as recorded (its durable offset); 404 if unknown (or, for a county's
        account, `county`, made by another account than one of that county), 410 if expired."""
        row = await self._db.read(lambda c: q.get(c, upload_id))
        if row is None or (county is not None and row.county != county):
            raise NotFound(f"no upload {upload_id}; it was finished, cancelled or never made")
        if row.content_id is None and row.expires_at < utcnow():
            raise Gone(f"upload {upload_id} expired; start the upload again")
        return row

    async def terminate(self, upload_id: str, county: str | None = None) -> None:
        """Cancel an upload: its bytes and row go. 409 while a PATCH writes to it."""
        await self.get(upload_id, county)
        state = self._state(upload_id)
        if state.lock.locked():
            raise Conflict("the upload is being written to; stop that request first")
        async with state.lock, self._claim(upload_id):
            await self._remove(upload_id)

    async def append(
        self, upload_id: str, client_offset: int, body: Body, content_length: int | None,
        checksum: Checksum | None, county: str | None = None,
    ) -> Appended:
        """Append `body` at `client_offset`, which must be the durable offset (else 409,
        details.offset); on the last byte, complete the upload into a content."""
        row = await self.get(upload_id, county)
        state = self._state(upload_id)
        whole = row.offset == row.length  # busy then means: being stored
        if state.lock.locked():
            raise self._busy(upload_id, whole)
        async with state.lock, self._claim(upload_id, whole=whole):
            fresh = await self._db.read(lambda c: q.get(c, upload_id))
            if fresh is None:
                raise NotFound(f"no upload {upload_id}; it was finished, cancelled or never made")
            row = fresh
            offset, length = row.offset, row.length
            if row.content_id is not None:
                raise Conflict("the upload is already complete", details={"offset": offset})
            if offset == length and client_offset == offset:
                # whole, but the store did not take it last time: try again
                if content_length:
                    raise PayloadTooLarge(f"the upload already has all its {length} bytes; "
                                          "send an empty PATCH to have it stored")
                content_id, sha256 = await self._complete(upload_id, state, row)
                return Appended(offset, content_id, sha256)
            if offset == length:
                raise Conflict("the upload has all its bytes; it is being stored",
                               details={"offset": offset})
            if client_offset != offset:
                raise Conflict(
                    f"Upload-Offset {client_offset} does not match the server's offset {offset}; "
                    "HEAD the upload and resume from there", details={"offset": offset},
                )
            if content_length is not None and offset + content_length > length:
                raise PayloadTooLarge(f"the body would take the upload past its length of {length} bytes")
            if length - offset > await asyncio.to_thread(self.free_bytes):
                raise _disk_full(offset)
            new_offset = await self._receive(body, upload_id, state, offset, length, checksum)
            if new_offset < length:
                return Appended(new_offset)
            content_id, sha256 = await self._complete(upload_id, state, row)
            return Appended(new_offset, content_id, sha256)

    async def store_pending(self) -> int:
        """Store the uploads that have all their bytes but that the store did not take (a
        bucket that was down); returns how many were stored. Uploads another request (or
        process) is working on are left for the next round."""
        stored = 0
        for upload_id in await self._db.read(q.unfinished_ids):
            row = await self._row(upload_id)
            if row is None or row.content_id is not None or row.offset != row.length:
                continue
            state = self._state(upload_id)
            if state.lock.locked():
                continue
            try:
                async with state.lock, self._claim(upload_id):
                    fresh = await self._row(upload_id)
                    if fresh is None or fresh.content_id is not None:
                        continue
                    await self._complete(upload_id, state, fresh)
                    stored += 1
            except (Conflict, NotFound):
                continue  # busy elsewhere, or its file went with an earlier try
            except Unprocessable as e:
                log.warning("finished upload %s was not accepted: %s", upload_id, e.message)
        return stored

    async def remove_expired(self) -> int:
        """Remove expired unfinished uploads and stray `.part` files; returns how many."""
        ids = await self._db.read(lambda c: q.expired(c, utcnow()))
        for upload_id in ids:
            if not self._state(upload_id).lock.locked():
                await self._remove(upload_id)
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

    # --- inside -----------------------------------------------------------------------

    async def _row(self, upload_id: str) -> UploadRow | None:
        return await self._db.read(lambda c: q.get(c, upload_id))

    def _busy(self, upload_id: str, whole: bool) -> ServerError:
        if whole:  # the last bytes are in; what holds it is the storing (perhaps a bucket down)
            retry = str(max(1, round(self._config.store_retry_seconds)))
            return ServiceUnavailable(
                f"upload {upload_id} has all its bytes and is being stored; ask again later",
                code="upload_storing", details={"retry_after": retry}, headers={"Retry-After": retry})
        return Conflict("another request is writing to this upload; wait for it, then HEAD for the offset")

    @contextlib.asynccontextmanager
    async def _claim(self, upload_id: str, *, whole: bool = False) -> AsyncIterator[None]:
        """Hold the upload's `.part` file exclusively (across processes); when another
        request holds it, 409 (503 upload_storing when the upload is `whole`). Without a
        file there is nothing to hold: the caller finds out."""
        path = self.part(upload_id)

        def lock() -> int:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                return -1
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self._busy(upload_id, whole) from None
            return fd

        fd = await asyncio.to_thread(lock)
        try:
            yield
        finally:
            if fd >= 0:
                os.close(fd)  # releases the lock; closing a read-only descriptor never waits

    async def _remove(self, upload_id: str) -> None:
        # The file goes first: on a full disk that frees the space the row delete needs.
        await asyncio.to_thread(self.part(upload_id).unlink, True)
        await self._db.write(lambda c: q.delete(c, upload_id))
        self._forget(upload_id)

    async def _receive(
        self, body: Body, upload_id: str, state: UploadState, offset: int, length: int,
        checksum: Checksum | None,
    ) -> int:
        """Append the body at `offset`; returns the new durable offset."""
        path = self.part(upload_id)
        if state.hasher is None or state.hashed_to != offset:
            # After a restart the running hash is rebuilt from the bytes already on disk.
            h = hashlib.sha256()
            await asyncio.to_thread(_truncate_and_hash, path, offset, h)
            state.hasher, state.hashed_to = h, offset
        before = state.hasher.copy()
        chunk_hasher = CHECKSUMS[checksum.algorithm]() if checksum else None
        hashers = [state.hasher] + ([chunk_hasher] if chunk_hasher else [])
        f = await asyncio.to_thread(_open_at, path, offset)
        writer = _BlockWriter(f, hashers, offset)
        cut = cancelled = False
        try:
            buf = bytearray()
            try:
                while chunk := await body.readany():
                    if writer.queued + len(buf) + len(chunk) > length:
                        raise PayloadTooLarge(
                            f"the body goes past the upload's length of {length} bytes"
                        )
                    buf += chunk
                    if len(buf) >= WRITE_BLOCK:
                        await writer.submit(bytes(buf))
                        buf.clear()
            except (ConnectionError, HttpProcessingError):
                cut = True  # keep what arrived; the client resumes from the recorded offset
            except asyncio.CancelledError:
                cut = cancelled = True  # server shutting down: keep what arrived, then stop
            if buf:
                await writer.submit(bytes(buf))
            await writer.finish()
        except BaseException as e:
            await writer.abandon()
            at_written = state.hasher
            state.hasher, state.hashed_to = before, offset
            if isinstance(e, OSError) and _is_enospc(e):
                with contextlib.suppress(OSError):  # flushing the buffer can hit the full disk again
                    await asyncio.to_thread(f.close)
                # A checksummed chunk is all or nothing.
                whole = writer.written if checksum is None else offset
                kept = await self._cut_back(upload_id, state, offset, whole, at_written)
                raise _disk_full(kept) from None
            await asyncio.to_thread(f.close)
            await asyncio.to_thread(_truncate, path, offset)
            raise
        await asyncio.to_thread(f.close)
        if checksum is not None and chunk_hasher is not None and (
                cut or chunk_hasher.digest() != checksum.digest):
            state.hasher, state.hashed_to = before, offset
            await asyncio.to_thread(_truncate, path, offset)
            if cut:
                raise BadRequest("the request body was cut off; resend the chunk")
            raise ChecksumMismatch(
                "the chunk does not match its Upload-Checksum; it was discarded, resend it"
            )
        written = writer.written
        state.hashed_to = written
        await self._db.write(lambda c: q.set_offset(c, upload_id, written))
        if cut:
            log.info("upload %s cut off at %d of %d bytes; kept for resuming", upload_id, written, length)
            if cancelled:
                raise asyncio.CancelledError
        return written

    async def _complete(self, upload_id: str, state: UploadState, row: UploadRow) -> tuple[str, str]:
        """Probe and ingest the whole file; returns (content_id, sha256). StoreUnavailable
        keeps the file and the row as they are, for `store_pending` or the next PATCH."""
        if state.hasher is None or state.hashed_to != row.length:
            # finished by an earlier request, or on another process: hash what is on disk
            h = hashlib.sha256()
            await asyncio.to_thread(_truncate_and_hash, self.part(upload_id), row.length, h)
            state.hasher, state.hashed_to = h, row.length
        sha256 = state.hasher.hexdigest()
        meta = content_meta(parse_metadata(row.metadata))
        await self._not_another_countys(upload_id, row, sha256)  # before probing and storing
        try:
            result = await self._ingestor.ingest(self.part(upload_id), sha256, row.length, meta,
                                                 row.county)
        except NotAVideo as e:
            await self._remove(upload_id)
            raise Unprocessable(f"not accepted: {e}", code=e.code, details=e.details) from None
        except StoreUnavailable:
            log.warning("upload %s is whole (%d bytes) but the store does not answer; kept, "
                        "to be stored when it does", upload_id, row.length)
            raise
        if not result.created:  # another county's upload of it may have finished meanwhile
            await self._not_another_countys(upload_id, row, sha256)
        await self._db.write(lambda c: q.set_content(c, upload_id, result.content_id))
        self._forget(upload_id)
        return result.content_id, sha256

    async def _not_another_countys(self, upload_id: str, row: UploadRow, sha256: str) -> None:
        """A county's upload of a file that is another county's own content (contents are
        one per file, and this county could not use that one) is refused whole: 409
        `content_of_another_county`, the upload removed."""
        county = row.county
        if county is None:
            return
        owner = await self._db.read(lambda c: contents.other_countys_file(c, sha256, county))
        if owner is None:
            return
        code, title, label = owner
        await self._remove(upload_id)
        raise Conflict(
            f"this file is already county {code}'s own content ({title}); the province's "
            "account can make it the whole province's, and then every county can use it",
            code="content_of_another_county", details={"county": label, "title": title})

    async def _cut_back(
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


class _BlockWriter:
    """Writes and hashes blocks on a worker thread, one in flight while the next is read."""

    def __init__(self, f: BinaryIO, hashers: list[hashlib._Hash], written: int) -> None:
        self._f = f
        self._hashers = hashers
        self._pending: asyncio.Future[None] | None = None
        self._pending_size = 0
        self.written = written
        self.queued = written  # handed to the writer, including the block in flight

    def _write(self, block: bytes) -> None:
        self._f.write(block)
        for h in self._hashers:
            h.update(block)

    async def submit(self, block: bytes) -> None:
        await self.drain()
        self._pending = asyncio.get_running_loop().run_in_executor(None, self._write, block)
        self._pending_size = len(block)
        self.queued += len(block)

    async def drain(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending
            self.written += self._pending_size

    async def finish(self) -> None:
        """Wait for the last block, then make everything durable."""
        await self.drain()

        def flush() -> None:
            self._f.flush()
            os.fsync(self._f.fileno())

        await asyncio.to_thread(flush)

    async def abandon(self) -> None:
        """Let the writer thread finish with the file before it is closed or cut back."""
        if self._pending is not None:
            with contextlib.suppress(Exception):
                await self._pending


def _open_at(path: Path, offset: int) -> BinaryIO:
    f = open(path, "r+b")  # noqa: SIM115 - closed by the caller
    f.truncate(offset)
    f.seek(offset)
    return f


def _is_enospc(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT)


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)
        os.fsync(f.fileno())


def _truncate_and_hash(path: Path, offset: int, h: hashlib._Hash) -> None:
    if not path.exists():
        raise NotFound("the upload's data is gone; start the upload again")
    _truncate(path, offset)
    update_from_file(h, path, offset)

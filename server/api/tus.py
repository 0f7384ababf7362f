"""Resumable uploads: tus 1.0.0 core, creation, checksum and termination.

The body streams to `uploads/<id>.part`; the running sha256 of the whole file is kept
as bytes arrive, and the offset is recorded only after the bytes are fsynced, so HEAD
after a crash or restart answers an offset whose bytes are really on disk. A PATCH cut
off mid-way keeps what arrived (the client resumes from there), unless it carried an
Upload-Checksum, which can only be checked on the whole chunk.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import errno
import hashlib
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from server.api.params import int_header
from server.appkeys import CONFIG, DB, INGESTOR, UPLOADS
from server.config import ServerConfig
from server.errors import (
    BadRequest,
    ChecksumMismatch,
    Conflict,
    Gone,
    Handler,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    Unprocessable,
    UnsupportedMediaType,
)
from server.ingest import ContentMeta, Ingestor, NotAVideo
from server.queries import new_id
from server.queries import uploads as q
from server.uploads import UploadManager, UploadState
from shared.files import fsync_dir
from shared.hashing import update_from_file
from shared.protocol import ContentKind
from shared.timeutil import from_db, utcnow

log = logging.getLogger(__name__)

TUS_VERSION: Final = "1.0.0"
UPLOADS_PATH: Final = "/api/v1/uploads"
EXTENSIONS: Final = "creation,checksum,termination"
CHECKSUMS: Final = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
WRITE_BLOCK: Final = 1 << 20  # bytes handed to the writer thread at a time
MAX_METADATA: Final = 16 * 1024
MAX_FILENAME: Final = 255
CONTENT_ID_HEADER: Final = "Yuanjiao-Content-Id"
SHA256_HEADER: Final = "Yuanjiao-Sha256"


def tus_headers(config: ServerConfig) -> dict[str, str]:
    return {
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": EXTENSIONS,
        "Tus-Max-Size": str(config.max_upload_bytes),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
    }


def _parse_metadata(raw: str | None) -> dict[str, str]:
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


def _int_header(request: web.Request, name: str) -> int:
    return int_header(request, name)


def _check_version(request: web.Request, config: ServerConfig) -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise PreconditionFailed(
            f"this server speaks tus {TUS_VERSION}; send Tus-Resumable: {TUS_VERSION}",
            code="tus_version",
        )


async def _upload_row(request: web.Request) -> tuple[str, dict[str, Any]]:
    upload_id = request.match_info["upload_id"]
    row = await request.app[DB].read(lambda c: q.get(c, upload_id))
    if row is None:
        raise NotFound(f"no upload {upload_id}; it was finished, cancelled or never made")
    if row["content_id"] is None and from_db(row["expires_at"]) < utcnow():
        raise Gone(f"upload {upload_id} expired; start the upload again")
    return upload_id, dict(row)


# --- handlers ------------------------------------------------------------------------


@web.middleware
async def tus_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer under the upload path carries Tus-Resumable, errors included."""
    response = await handler(request)
    if request.path.startswith(UPLOADS_PATH):
        response.headers["Tus-Resumable"] = TUS_VERSION
        if response.status == 412:
            response.headers["Tus-Version"] = TUS_VERSION
    return response


async def options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=tus_headers(request.app[CONFIG]))


async def create(request: web.Request) -> web.Response:
    config, manager = request.app[CONFIG], request.app[UPLOADS]
    _check_version(request, config)
    if "Upload-Defer-Length" in request.headers:
        raise BadRequest("Upload-Defer-Length is not supported; send Upload-Length")
    length = _int_header(request, "Upload-Length")
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
    raw_meta = request.headers.get("Upload-Metadata")
    content_meta(_parse_metadata(raw_meta))  # reject bad metadata now, not after the upload
    if length > await asyncio.to_thread(manager.free_bytes):
        raise InsufficientStorage(
            f"not enough disk space on the server for {length} bytes; ask the county admin to "
            "free space in the media store"
        )
    upload_id = new_id()
    now = utcnow()
    expires = now + timedelta(hours=config.upload_expiry_hours)

    def touch() -> None:
        manager.dir.mkdir(parents=True, exist_ok=True)
        with open(manager.part(upload_id), "xb") as f:
            os.fsync(f.fileno())
        fsync_dir(manager.dir)

    await asyncio.to_thread(touch)
    await request.app[DB].write(lambda c: q.create(c, upload_id, length, raw_meta or "", now, expires))
    return web.Response(
        status=201,
        headers={"Location": f"{UPLOADS_PATH}/{upload_id}", "Upload-Offset": "0",
                 "Upload-Expires": expires.strftime("%a, %d %b %Y %H:%M:%S GMT")},
    )


def _mb(size: int) -> str:
    return f"{size / (1 << 20):,.1f} MB"


async def method_override(request: web.Request) -> web.StreamResponse:
    """POST + `X-HTTP-Method-Override: PATCH|DELETE`, for clients behind proxies that pass
    only GET and POST (tus core requires servers to honour it)."""
    wanted = request.headers.get("X-HTTP-Method-Override", "").strip().upper()
    if wanted == "PATCH":
        return await patch(request)
    if wanted == "DELETE":
        return await delete(request)
    raise web.HTTPMethodNotAllowed(
        "POST", ["HEAD", "PATCH", "DELETE", "OPTIONS"],
        text="POST to an upload needs X-HTTP-Method-Override: PATCH or DELETE",
    )


async def head(request: web.Request) -> web.Response:
    _upload_id, row = await _upload_row(request)
    headers = {
        "Upload-Offset": str(row["offset"]),
        "Upload-Length": str(row["length"]),
        "Cache-Control": "no-store",
    }
    if row["metadata"]:
        headers["Upload-Metadata"] = str(row["metadata"])
    if row["content_id"]:
        headers[CONTENT_ID_HEADER] = str(row["content_id"])
    return web.Response(status=200, headers=headers)


async def delete(request: web.Request) -> web.Response:
    _check_version(request, request.app[CONFIG])
    upload_id, _row = await _upload_row(request)
    manager = request.app[UPLOADS]
    state = manager.state(upload_id)
    if state.lock.locked():
        raise Conflict("the upload is being written to; stop that request first")
    async with state.lock:
        await manager.remove(upload_id)
    return web.Response(status=204)


def _checksum(request: web.Request) -> tuple[hashlib._Hash, bytes] | None:
    raw = request.headers.get("Upload-Checksum")
    if raw is None:
        return None
    algo, _, b64 = raw.strip().partition(" ")
    if algo not in CHECKSUMS:
        raise BadRequest(f"checksum algorithm {algo!r} is not supported (use sha1 or sha256)")
    try:
        expected = base64.b64decode(b64, validate=True)
    except binascii.Error:
        raise BadRequest("Upload-Checksum value is not base64") from None
    return CHECKSUMS[algo](), expected


async def patch(request: web.Request) -> web.Response:
    config, manager, db = request.app[CONFIG], request.app[UPLOADS], request.app[DB]
    _check_version(request, config)
    if request.content_type != "application/offset+octet-stream":
        raise UnsupportedMediaType("PATCH bodies must be Content-Type: application/offset+octet-stream")
    client_offset = _int_header(request, "Upload-Offset")
    checksum = _checksum(request)
    upload_id, row = await _upload_row(request)
    state = manager.state(upload_id)
    if state.lock.locked():
        raise Conflict("another request is writing to this upload; wait for it, then HEAD for the offset")
    async with state.lock:
        row = dict(await db.read(lambda c: q.get(c, upload_id)) or row)
        offset, length = int(row["offset"]), int(row["length"])
        if row["content_id"] is not None or offset == length:
            raise Conflict("the upload is already complete", details={"offset": offset})
        if client_offset != offset:
            raise Conflict(
                f"Upload-Offset {client_offset} does not match the server's offset {offset}; "
                "HEAD the upload and resume from there", details={"offset": offset},
            )
        if request.content_length is not None and offset + request.content_length > length:
            raise PayloadTooLarge(f"the body would take the upload past its length of {length} bytes")
        if length - offset > await asyncio.to_thread(manager.free_bytes):
            raise _disk_full(offset)
        new_offset = await _receive(request, manager, upload_id, state, offset, length, checksum)
        headers = {"Upload-Offset": str(new_offset)}
        if new_offset == length:
            headers.update(await _complete(request, manager, upload_id, state, row))
    return web.Response(status=204, headers=headers)


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


async def _receive(
    request: web.Request, manager: UploadManager, upload_id: str, state: UploadState, offset: int,
    length: int, checksum: tuple[hashlib._Hash, bytes] | None,
) -> int:
    """Append the body at `offset`; returns the new durable offset."""
    path = manager.part(upload_id)
    if state.hasher is None or state.hashed_to != offset:
        # After a restart the running hash is rebuilt from the bytes already on disk.
        h = hashlib.sha256()
        await asyncio.to_thread(_truncate_and_hash, path, offset, h)
        state.hasher, state.hashed_to = h, offset
    before = state.hasher.copy()
    hashers = [state.hasher] + ([checksum[0]] if checksum else [])
    f = await asyncio.to_thread(_open_at, path, offset)
    writer = _BlockWriter(f, hashers, offset)
    cut = cancelled = False
    try:
        buf = bytearray()
        try:
            while chunk := await request.content.readany():
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
            whole = writer.written if checksum is None else offset  # a checksummed chunk is all or nothing
            kept = await manager.cut_back(upload_id, state, offset, whole, at_written)
            raise _disk_full(kept) from None
        await asyncio.to_thread(f.close)
        await asyncio.to_thread(_truncate, path, offset)
        raise
    await asyncio.to_thread(f.close)
    if checksum is not None and (cut or checksum[0].digest() != checksum[1]):
        state.hasher, state.hashed_to = before, offset
        await asyncio.to_thread(_truncate, path, offset)
        if cut:
            raise BadRequest("the request body was cut off; resend the chunk")
        raise ChecksumMismatch(
            "the chunk does not match its Upload-Checksum; it was discarded, resend it"
        )
    written = writer.written
    state.hashed_to = written
    await request.app[DB].write(lambda c: q.set_offset(c, upload_id, written))
    if cut:
        log.info("upload %s cut off at %d of %d bytes; kept for resuming", upload_id, written, length)
        if cancelled:
            raise asyncio.CancelledError
    return written


def _disk_full(offset: int) -> InsufficientStorage:
    return InsufficientStorage(
        f"The server's disk is full; the upload is kept up to byte {offset}. Ask the county admin "
        "to free space, then resume (HEAD, then PATCH from Upload-Offset).",
        details={"offset": offset}, headers={"Upload-Offset": str(offset)},
    )


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


async def _complete(
    request: web.Request, manager: UploadManager, upload_id: str, state: UploadState,
    row: dict[str, Any],
) -> dict[str, str]:
    assert state.hasher is not None
    sha256 = state.hasher.hexdigest()
    meta = content_meta(_parse_metadata(str(row["metadata"] or "")))
    ingestor: Ingestor = request.app[INGESTOR]
    try:
        result = await ingestor.ingest(manager.part(upload_id), sha256, int(row["length"]), meta)
    except NotAVideo as e:
        await manager.remove(upload_id)
        raise Unprocessable(f"not accepted: {e}", code=e.code, details=e.details) from None
    await request.app[DB].write(lambda c: q.set_content(c, upload_id, result.content_id))
    manager.forget(upload_id)
    return {CONTENT_ID_HEADER: result.content_id, SHA256_HEADER: sha256}

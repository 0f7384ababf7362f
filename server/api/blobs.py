"""`/blobs/<sha256>`: immutable content served with sendfile.

The ETag is the content hash itself, so a terminal's `If-Range` or `If-None-Match`
means "the bytes I already hold". Conditional requests and ranges follow RFC 9110:
a single byte range gives 206, an unsatisfiable one 416, a failed `If-Range` the whole
file with 200, and several ranges at once are answered with the whole file.

Who sends the bytes, once the request is authorised (`server.auth.policy`, blob access):

    the server itself     the default: sendfile from data_dir/media
    nginx                 `accel_redirect_prefix` set: the answer is empty with
                          `X-Accel-Redirect: <prefix><ab>/<sha256>` and nginx sends the file
                          from its internal location (Range, If-Range against this ETag)
    the bucket / its CDN  `media_store = "s3"`: 307 to a short-lived signed URL of the
                          object (or `s3_public_base_url`/<sha256>); the client sends its
                          Range there, never its token (a different origin). HEAD and a
                          matching If-None-Match are answered here, without a redirect.

Behind nginx or a bucket, the bytes counted as sent are the bytes the answer hands over.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING, BinaryIO, Final, cast

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from server.appkeys import CONFIG, EGRESS, STORE
from server.errors import NotFound, PreconditionFailed, RangeNotSatisfiable
from server.media.store import MediaStore
from shared.hashing import is_sha256
from shared.typed import is_ascii_digits

if TYPE_CHECKING:
    from server.media.objects import S3Store

CACHE_CONTROL: Final = "public, max-age=31536000, immutable"
FALLBACK_CHUNK: Final = 256 * 1024


class _SendfileResponse(web.StreamResponse):
    """Headers, then `count` bytes of `fobj` from `offset` by the kernel's sendfile."""

    def __init__(self, fobj: BinaryIO, offset: int, count: int, status: int,
                 headers: dict[str, str], on_sent: Callable[[int], None] | None = None) -> None:
        super().__init__(status=status, headers=headers)
        self.content_length = count
        self._fobj, self._offset, self._count = fobj, offset, count
        self._on_sent = on_sent

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        try:
            writer = await super().prepare(request)
            if request.method == "HEAD" or self._count == 0 or writer is None:
                return writer
            await writer.drain()
            transport = request.transport
            if transport is None:
                raise ConnectionResetError("connection lost")
            loop = asyncio.get_running_loop()
            try:
                await loop.sendfile(transport, self._fobj, self._offset, self._count)
            except NotImplementedError:  # e.g. TLS terminated in-process
                await self._copy(writer, loop)
            await super().write_eof()
            if self._on_sent is not None:
                self._on_sent(self._count)
            return writer
        finally:
            self._fobj.close()  # a read-only descriptor: closing never waits on the disk

    async def _copy(self, writer: AbstractStreamWriter, loop: asyncio.AbstractEventLoop) -> None:
        offset, left = self._offset, self._count
        while left > 0:
            chunk = await loop.run_in_executor(None, os.pread, self._fobj.fileno(),
                                               min(FALLBACK_CHUNK, left), offset)
            if not chunk:
                break
            await writer.write(chunk)
            offset += len(chunk)
            left -= len(chunk)


def _etag_listed(header: str, etag: str, *, weak_ok: bool) -> bool:
    for tag in (t.strip() for t in header.split(",")):
        if tag == "*":
            return True
        if tag.startswith("W/"):
            if weak_ok and tag[2:] == etag:
                return True
        elif tag == etag:
            return True
    return False


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One `bytes=` range as (start, end inclusive); None to ignore the header.

    Raises RangeNotSatisfiable for a well-formed range that selects nothing.
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not _digits(first, empty_ok=True) or not _digits(last, empty_ok=bool(first)):
        return None  # only ASCII digits count: `²` or full-width digits make the header invalid
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(f"the range selects nothing of {size} bytes")
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # syntactically invalid: ignore the header, as RFC 9110 says
    if start >= size:
        raise RangeNotSatisfiable(f"the range starts at {start}, past the end ({size} bytes)")
    return start, min(end, size - 1)


def _digits(text: str, *, empty_ok: bool) -> bool:
    if text == "":
        return empty_ok
    return is_ascii_digits(text)


def _if_range_holds(value: str, etag: str, last_modified: datetime) -> bool:
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == etag  # strong comparison; a weak tag never matches
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return when == last_modified


def _handed_over(request: web.Request, size: int) -> int:
    """Bytes an answer delegated to nginx or the bucket will carry (for the egress count)."""
    if request.method == "HEAD":
        return 0
    range_header = request.headers.get("Range")
    if range_header is None:
        return size
    try:
        chosen = parse_range(range_header, size)
    except RangeNotSatisfiable:
        return 0
    return size if chosen is None else chosen[1] - chosen[0] + 1


async def _from_bucket(request: web.Request, store: S3Store, sha256: str) -> web.StreamResponse:
    etag = f'"{sha256}"'
    inm = request.headers.get("If-None-Match")
    if inm is not None and _etag_listed(inm, etag, weak_ok=True):
        return web.Response(status=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})
    if (im := request.headers.get("If-Match")) is not None and not _etag_listed(im, etag, weak_ok=False):
        raise PreconditionFailed("the content does not match If-Match", headers={"ETag": etag})
    size = store.known_size(sha256)
    if size is None:
        size = await asyncio.to_thread(store.size, sha256)  # StoreUnavailable: 503 (middleware)
    if size is None:
        raise NotFound(f"no content with sha256 {sha256} on this server")
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
    if request.method == "HEAD":
        headers["Cache-Control"] = CACHE_CONTROL
        head = web.StreamResponse(status=200, headers=headers)
        head.content_length = size
        return head
    request.app[EGRESS].add(sha256, _handed_over(request, size))
    # the signed URL expires: nobody may keep this answer
    headers.update({"Location": store.signed_url(sha256), "Cache-Control": "no-store"})
    return web.Response(status=307, headers=headers)


def _accel(request: web.Request, store: MediaStore, prefix: str, sha256: str,
           fobj: BinaryIO, headers: dict[str, str]) -> web.StreamResponse:
    """Hand the file to nginx: it answers Range/If-Range itself, against this ETag."""
    size = os.fstat(fobj.fileno()).st_size
    fobj.close()
    request.app[EGRESS].add(sha256, _handed_over(request, size))
    headers = {**headers, "X-Accel-Redirect": prefix + store.relative(sha256)}
    return web.Response(status=200, headers=headers)


async def blob(request: web.Request) -> web.StreamResponse:
    sha256 = request.match_info["sha256"]
    if not is_sha256(sha256):
        raise NotFound("blob names are the lower-case hex sha256 of the content")
    store = request.app[STORE]
    if store.kind == "s3":  # server.media.objects, imported only with a bucket configured
        return await _from_bucket(request, cast("S3Store", store), sha256)
    assert isinstance(store, MediaStore)
    path = store.path(sha256)
    # Opened on the loop, as an event-driven file server does: a lookup in the store's
    # two-level fan-out takes microseconds, while a thread round trip per request (and
    # the lock hand-offs it causes under load) was a third of the server's CPU per blob
    # with 211 clients. Reading the bytes is left to the kernel (sendfile).
    try:
        fobj = open(path, "rb", buffering=0)  # noqa: ASYNC230, SIM115 - see above; closed by the response
    except FileNotFoundError:
        raise NotFound(f"no content with sha256 {sha256} on this server") from None
    try:
        st = os.fstat(fobj.fileno())
        size = st.st_size
        etag = f'"{sha256}"'
        last_modified = datetime.fromtimestamp(int(st.st_mtime), UTC)
        headers = {
            "ETag": etag,
            "Cache-Control": CACHE_CONTROL,
            "Accept-Ranges": "bytes",
            "Last-Modified": format_datetime(last_modified, usegmt=True),
            "Content-Type": "application/octet-stream",
        }
        if (inm := request.headers.get("If-None-Match")) is not None:
            if _etag_listed(inm, etag, weak_ok=True):
                fobj.close()
                return web.Response(status=304, headers={k: headers[k] for k in
                                                         ("ETag", "Cache-Control", "Last-Modified")})
        elif (im := request.headers.get("If-Match")) is not None and not _etag_listed(
            im, etag, weak_ok=False
        ):
            raise PreconditionFailed(
                "the content does not match If-Match", headers={"ETag": etag}
            )
        prefix = request.app[CONFIG].accel_redirect_prefix
        if prefix is not None:
            return _accel(request, store, prefix, sha256, fobj, headers)
        status, offset, count = 200, 0, size
        range_header = request.headers.get("Range")
        if range_header is not None:
            if_range = request.headers.get("If-Range")
            if if_range is None or _if_range_holds(if_range, etag, last_modified):
                try:
                    chosen = parse_range(range_header, size)
                except RangeNotSatisfiable:
                    fobj.close()
                    raise RangeNotSatisfiable(
                        f"the requested range is outside the content ({size} bytes)",
                        details={"size": size}, headers={"Content-Range": f"bytes */{size}"},
                    ) from None
                if chosen is not None:
                    start, end = chosen
                    status, offset, count = 206, start, end - start + 1
                    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    except BaseException:
        fobj.close()
        raise
    egress = request.app[EGRESS]
    return _SendfileResponse(fobj, offset, count, status, headers,
                             on_sent=lambda n: egress.add(sha256, n))

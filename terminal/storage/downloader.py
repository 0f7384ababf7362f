"""Fetching one item into the cache: resumable, exact, verified, durable.

Bytes go to `<sha256>.part`. After any interruption the download continues with
`Range: bytes=<offset>-` and `If-Range: "<sha256>"`; only a 206 whose Content-Range
starts at exactly that offset and whose total is exactly the expected size is appended.
Any other answer restarts the file from byte 0 — a 200 is the whole file, so it is
written from the start — and nothing is ever stitched. With the catalog's piece hashes
(`shared.pieces`) every piece is checked as it arrives; a bad one is cut off and asked
for again from its first byte, so one corrupt byte costs one piece, not the film. The
whole file's sha256 is computed as bytes arrive too (the kept prefix, with its pieces,
is checked first, off the event loop); only a matching file is fsynced and renamed
into place.

The server may answer a blob with a redirect (307) to where the bytes are: a media
bucket's signed URL or its CDN. Redirects are followed here, not by aiohttp: the next
hop gets the same `Range`, but on another origin neither the terminal's token nor
`If-Range` (the bucket's ETag is not the sha256; the piece and file hashes still check
every byte), and it is fetched with the `foreign` session, which checks certificates
against the system's CAs instead of the county server's pin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

from shared.files import fsync_dir, fsync_file
from shared.pieces import BadPiece, PieceCheck, check_prefix
from terminal import constants as k
from terminal.errors import (
    BadSource,
    DiskFull,
    DownloadFailed,
    HashMismatch,
    RangeMismatch,
    ServerUnreachable,
)
from terminal.network.bandwidth import RateLimiter
from terminal.network.client import TRANSPORT_ERRORS

log = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"^bytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19})$")  # ASCII digits only
MAX_RESTARTS = 2  # per call: a server that keeps answering wrongly is tried again later
MAX_PIECE_TRIES = 3  # per piece and call: a source that keeps sending it wrong is left for later
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Fetched:
    sha256: str
    path: Path
    resumed_from: int  # 0 when the file was fetched from its start
    restarts: int  # clean restarts forced by unusable answers
    pieces_refetched: int = 0  # pieces that failed their check and were asked for again
    received: int = 0  # body bytes taken in by this call, whatever became of them


@dataclass
class _Tally:
    received: int = 0


ProgressCallback = Callable[[str, int, int], None]  # sha256, bytes present, size


def parse_content_range(value: str | None) -> tuple[int, int, int] | None:
    if value is None:
        return None
    m = _CONTENT_RANGE.match(value.strip())
    if m is None:
        return None
    return int(m[1]), int(m[2]), int(m[3])


class Downloader:
    def __init__(
        self, http: aiohttp.ClientSession, *, limiter: RateLimiter | None = None,
        chunk: int = k.DOWNLOAD_CHUNK, progress: ProgressCallback | None = None,
        progress_log_seconds: float = k.PROGRESS_LOG_SECONDS,
        foreign: aiohttp.ClientSession | None = None,
    ) -> None:
        self._http = http
        self.http = http
        self._foreign = foreign or http  # for redirects to another origin (bucket, CDN)
        self._limiter = limiter
        # under a cap, small blocks keep the pace even instead of a burst and a long pause
        self._chunk = chunk if limiter is None else max(4096, min(chunk, limiter.rate // 8))
        self._progress = progress
        self._log_every = progress_log_seconds
        self.received_total = 0  # body bytes taken in by every call, for the heartbeat

    async def fetch(
        self, base_url: str, sha256: str, size: int, part: Path, dest: Path,
        headers: dict[str, str] | None = None, *, piece_size: int = 0,
        pieces: Sequence[str] = (), strict: bool = False,
    ) -> Fetched:
        """Bring `dest` into being with exactly the bytes named `sha256`, or raise.

        With the catalog's piece hashes, each piece is checked as it arrives and only a
        piece that fails is asked for again (from its first byte); a resumed download
        re-checks the kept bytes, the piece it resumes in included once it is complete.
        HashMismatch when a piece keeps failing (the verified pieces before it are kept
        for the next try) or the whole file does not hash to `sha256`. With `strict`
        (a peer), the first bad piece raises BadSource, the pieces before it kept."""
        url = f"{base_url.rstrip('/')}/blobs/{sha256}"
        check = PieceCheck(size, piece_size, pieces)
        if pieces and not check.checked:
            log.warning("%s: the catalog's %d piece hashes do not fit %d bytes; checking the "
                        "whole file only", sha256[:12], len(pieces), size)
        offset = await asyncio.to_thread(_part_size, part, size)
        if offset:
            good = await asyncio.to_thread(check_prefix, check, part, offset)
            if good < offset:
                log.warning("%s: a kept piece from byte %d does not hash right; fetching from there",
                            sha256[:12], good)
                await asyncio.to_thread(os.truncate, part, good)
                offset = good
        resumed_from = offset
        restarts = 0
        tries: dict[int, int] = {}
        tally = _Tally()
        while check.offset < size:
            try:
                await self._transfer(url, sha256, size, part, check, headers or {}, tally)
            except BadPiece as e:
                tries[e.index] = tries.get(e.index, 0) + 1
                log.warning("%s: %s; fetching that piece again", sha256[:12], e)
                await asyncio.to_thread(os.truncate, part, e.start)
                if strict:
                    raise BadSource(f"{sha256[:12]}: {e}") from e
                if tries[e.index] >= MAX_PIECE_TRIES:
                    raise HashMismatch(f"{sha256[:12]}: {e}, {tries[e.index]} times") from e
                continue
            except RangeMismatch as e:
                restarts += 1
                log.warning("%s: %s; restarting the file from byte 0", sha256[:12], e)
                await asyncio.to_thread(_truncate, part)
                check.reset()
                resumed_from = 0
                if restarts > MAX_RESTARTS:
                    raise
                continue
            if check.offset < size:
                raise DownloadFailed(
                    f"{sha256[:12]}: the answer ended at byte {check.offset} of {size}")
        if check.whole() != sha256:
            await asyncio.to_thread(part.unlink, True)
            raise HashMismatch(f"{sha256[:12]}: the received bytes hash to {check.whole()[:12]}")
        await asyncio.to_thread(_commit, part, dest)
        return Fetched(sha256=sha256, path=dest, resumed_from=resumed_from, restarts=restarts,
                       pieces_refetched=sum(tries.values()), received=tally.received)

    async def _transfer(
        self, url: str, sha256: str, size: int, part: Path, check: PieceCheck,
        extra: dict[str, str], tally: _Tally,
    ) -> None:
        """One request, appended to `part` from `check.offset` on."""
        headers = dict(extra)
        offset = check.offset
        if offset:
            headers.update({"Range": f"bytes={offset}-", "If-Range": f'"{sha256}"'})
            log.info("resuming %s from byte %d of %d", sha256[:12], offset, size)
        try:
            async with self._get(url, headers) as resp:
                if resp.status == 404:
                    raise DownloadFailed(f"{sha256[:12]}: the server no longer has this item")
                if resp.status == 416:
                    raise RangeMismatch(f"416 for a range from byte {offset}")
                if resp.status == 206:
                    got = parse_content_range(resp.headers.get("Content-Range"))
                    if not offset:
                        raise RangeMismatch("206 to a request without a range")
                    if got is None or got[0] != offset or got[2] != size or got[1] != size - 1:
                        raise RangeMismatch(
                            f"Content-Range {resp.headers.get('Content-Range')!r} does not continue "
                            f"byte {offset} of {size}"
                        )
                elif resp.status == 200:
                    if offset:
                        # the whole file instead of the rest: start over with these bytes
                        log.warning("%s: the server sent the whole file; restarting from byte 0",
                                    sha256[:12])
                        await asyncio.to_thread(_truncate, part)
                        check.reset()
                    if resp.content_length is not None and resp.content_length != size:
                        raise DownloadFailed(
                            f"{sha256[:12]}: {resp.content_length} bytes offered, {size} expected"
                        )
                else:
                    raise DownloadFailed(f"{sha256[:12]}: HTTP {resp.status} from the server")
                await self._receive(resp, sha256, size, part, check, tally)
        except TRANSPORT_ERRORS as e:
            raise ServerUnreachable(f"{url}: {e!r}") from e

    @contextlib.asynccontextmanager
    async def _get(self, url: str, headers: dict[str, str]) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET, following redirects; another origin gets only `Range` (see the module)."""
        origin = URL(url).origin()
        target, session, sent = URL(url), self._http, headers
        for _ in range(MAX_REDIRECTS + 1):
            resp = await session.get(target, headers=sent, allow_redirects=False)
            location = resp.headers.get("Location")
            if resp.status not in _REDIRECTS or not location:
                try:
                    yield resp
                finally:
                    resp.release()
                return
            resp.release()
            target = resp.url.join(URL(location, encoded=True))  # a signed query stays as signed
            if target.origin() != origin:
                session = self._foreign
                sent = {k: v for k, v in headers.items() if k.lower() == "range"}
            log.debug("redirected to %s", target.with_query(None))
        raise DownloadFailed(f"{url}: more than {MAX_REDIRECTS} redirects")

    async def _receive(
        self, resp: aiohttp.ClientResponse, sha256: str, size: int, part: Path, check: PieceCheck,
        tally: _Tally,
    ) -> None:
        loop = asyncio.get_running_loop()
        fd = await asyncio.to_thread(os.open, part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        last_log = time.monotonic()
        try:
            async for block in resp.content.iter_chunked(self._chunk):
                tally.received += len(block)
                self.received_total += len(block)
                if check.offset + len(block) > size:
                    raise RangeMismatch(f"more than the expected {size} bytes arrived")
                if self._limiter is not None:
                    await self._limiter.take(len(block))
                try:
                    await loop.run_in_executor(None, _append, fd, check, block)
                except OSError as e:
                    if e.errno == 28:  # ENOSPC
                        raise DiskFull(f"the disk filled while writing {sha256[:12]}") from e
                    raise
                offset = check.offset
                if self._progress is not None:
                    self._progress(sha256, offset, size)
                now = time.monotonic()
                if now - last_log >= self._log_every:
                    last_log = now
                    log.info("downloading %s: %d of %d bytes", sha256[:12], offset, size)
        finally:
            await asyncio.to_thread(os.close, fd)


def _part_size(part: Path, size: int) -> int:
    try:
        have = part.stat().st_size
    except FileNotFoundError:
        return 0
    if have > size:
        part.unlink()
        return 0
    return have


def _truncate(part: Path) -> None:
    with open(part, "wb"):
        pass


def _append(fd: int, check: PieceCheck, block: bytes) -> None:
    """Write a block, then check it: BadPiece leaves extra bytes the caller cuts off."""
    view = memoryview(block)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    check.feed(block)


def _commit(part: Path, dest: Path) -> None:
    fsync_file(part)
    os.replace(part, dest)
    fsync_dir(dest.parent)

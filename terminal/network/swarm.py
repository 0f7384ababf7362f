"""Taking one item's pieces from several peers at once.

Each source (a peer's `/peer/blobs/<sha256>`) gets its own worker; a worker claims the
lowest runs of pieces nobody holds or fetches yet, asks for exactly those bytes
(`Range: bytes=a-b`), checks every piece as it completes and writes only verified pieces,
at their place in the cache's `<sha256>.part`. A source that sends a bad piece is
dropped for good (and reported); one that fails otherwise is dropped for this item. When
every source is gone before the last piece, `SwarmIncomplete` says how many bytes from
the start are verified and held, so the caller continues from there (the server).
The whole file is hashed before it is ready, as with any download.

Memory stays flat: one piece per worker is held while it is checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from shared.files import fsync_dir, fsync_file
from shared.hashing import sha256_file
from shared.pieces import piece_count
from terminal.errors import DownloadFailed, HashMismatch
from terminal.network.client import TRANSPORT_ERRORS
from terminal.storage.downloader import parse_content_range

log = logging.getLogger(__name__)

RUN = 4  # pieces asked for in one request


@dataclass(frozen=True)
class Source:
    name: str  # a terminal id
    url: str  # .../peer/blobs/<sha256>
    headers: dict[str, str]


class SwarmIncomplete(DownloadFailed):
    """Every source is gone; `verified_prefix` bytes from the start are held verified."""

    def __init__(self, message: str, verified_prefix: int) -> None:
        super().__init__(message)
        self.verified_prefix = verified_prefix


@dataclass
class SwarmResult:
    received: dict[str, int] = field(default_factory=dict)  # source -> body bytes taken in
    bad: list[str] = field(default_factory=list)  # sources that sent a bad piece


class Swarm:
    def __init__(self, http: aiohttp.ClientSession, sha256: str, size: int, piece_size: int,
                 pieces: Sequence[str], part: Path, dest: Path) -> None:
        self._http = http
        self.sha256 = sha256
        self.size = size
        self.piece_size = piece_size
        self._pieces = list(pieces)
        self._count = piece_count(size, piece_size)
        self._part = part
        self._dest = dest
        self._have: set[int] = set()
        self._taken: set[int] = set()
        self._changed = asyncio.Event()  # a run finished or was given back
        self._working = 0
        self.result = SwarmResult()

    def _bounds(self, index: int) -> tuple[int, int]:
        start = index * self.piece_size
        return start, min(self.size, start + self.piece_size)

    def prefix(self) -> int:
        n = 0
        while n in self._have:
            n += 1
        return min(self.size, n * self.piece_size)

    async def run(self, sources: Sequence[Source], have_prefix: int = 0) -> SwarmResult:
        """Fetch every piece from `sources` (the first `have_prefix` bytes, whole pieces,
        are already verified in `part`). SwarmIncomplete when the sources run out."""
        self._have = set(range(have_prefix // self.piece_size))
        fd = await asyncio.to_thread(os.open, self._part, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            await asyncio.gather(*(self._worker(fd, s) for s in sources))
        finally:
            await asyncio.to_thread(os.close, fd)
        if len(self._have) < self._count:
            prefix = self.prefix()
            await asyncio.to_thread(os.truncate, self._part, prefix)
            raise SwarmIncomplete(
                f"{self.sha256[:12]}: the peers gave {len(self._have)} of {self._count} pieces",
                prefix)
        digest = await asyncio.to_thread(sha256_file, self._part)
        if digest != self.sha256:  # every piece verified, so only a wrong catalog gets here
            await asyncio.to_thread(self._part.unlink, True)
            raise HashMismatch(f"{self.sha256[:12]}: the pieces hash to {digest[:12]} as a whole")
        await asyncio.to_thread(_commit, self._part, self._dest)
        return self.result

    def _claim(self) -> list[int]:
        run: list[int] = []
        for i in range(self._count):
            if i in self._have or i in self._taken:
                if run:
                    break
                continue
            run.append(i)
            if len(run) == RUN:
                break
        self._taken.update(run)
        return run

    async def _worker(self, fd: int, source: Source) -> None:
        self._working += 1
        try:
            await self._work(fd, source)
        finally:
            self._working -= 1
            self._changed.set()

    async def _work(self, fd: int, source: Source) -> None:
        while len(self._have) < self._count:
            run = self._claim()
            if not run:  # the rest is in flight elsewhere: wait in case it is given back
                if self._working <= 1 and not self._taken:
                    return
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                await self._fetch_run(fd, source, run)
            except _BadPiece as e:
                log.error("peer %s sent piece %d of %s that does not verify: dropped",
                          source.name, e.index, self.sha256[:12])
                self.result.bad.append(source.name)
                return
            except (DownloadFailed, *TRANSPORT_ERRORS) as e:
                log.warning("peer %s stopped giving %s: %r", source.name, self.sha256[:12], e)
                return
            finally:
                self._taken.difference_update(i for i in run if i not in self._have)
                self._changed.set()

    async def _fetch_run(self, fd: int, source: Source, run: list[int]) -> None:
        start, end = self._bounds(run[0])[0], self._bounds(run[-1])[1]
        headers = {**source.headers, "Range": f"bytes={start}-{end - 1}"}
        async with self._http.get(source.url, headers=headers) as resp:
            got = parse_content_range(resp.headers.get("Content-Range"))
            if resp.status != 206 or got is None or got[:3] != (start, end - 1, self.size):
                raise DownloadFailed(f"HTTP {resp.status}, Content-Range {got} for {start}-{end - 1}")
            index, buf = run[0], bytearray()
            async for block in resp.content.iter_chunked(256 * 1024):
                self.result.received[source.name] = self.result.received.get(source.name, 0) + len(block)
                buf += block
                while index <= run[-1]:
                    lo, hi = self._bounds(index)
                    if len(buf) < hi - lo:
                        break
                    piece, buf = bytes(buf[:hi - lo]), buf[hi - lo:]
                    if not await asyncio.to_thread(_check_write, fd, piece, lo, self._pieces[index]):
                        raise _BadPiece(index)
                    self._have.add(index)
                    index += 1
            if index <= run[-1]:
                raise DownloadFailed(f"the answer ended before piece {index}")


class _BadPiece(Exception):
    def __init__(self, index: int) -> None:
        super().__init__(f"piece {index}")
        self.index = index


def _check_write(fd: int, piece: bytes, offset: int, expected: str) -> bool:
    """Write the piece at its place if it hashes to `expected` (blocking)."""
    if hashlib.sha256(piece).hexdigest() != expected:
        return False
    view = memoryview(piece)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
    return True


def _commit(part: Path, dest: Path) -> None:
    fsync_file(part)
    os.replace(part, dest)
    fsync_dir(dest.parent)

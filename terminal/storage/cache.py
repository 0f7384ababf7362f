"""The offline cache: files named by sha256, a quota, eviction, verification.

Only this module decides that bytes are playable. An item is handed out as a
`VerifiedMedia` right after its file hashed to the catalog's sha256; the player takes
nothing else. After an unclean shutdown (no clean-shutdown marker) every file marked
ready is uncertain ("verifying") and is hashed again before use. A file changed since its
last check (size or modification time) is "verifying" too, and one that no longer matches
is removed and fetched anew. The scrub (`terminal.storage.scrub`) hashes every ready file again
on a schedule, which also catches bytes changed behind an unchanged modification time.

Room is made by evicting items no longer assigned, least recently played first, never
one an upcoming session needs. When the quota or the disk's free-space floor still
leaves no room, downloads pause and the status says so; everything cached still plays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from shared.sqlite import Database
from shared.timeutil import to_db, utcnow
from terminal import constants as k
from terminal.errors import NotReady, VerifyInterrupted
from terminal.storage import db as q

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifiedMedia:
    """A cached file whose bytes hashed to `sha256` just before it was handed out."""

    sha256: str
    path: Path
    title: str
    duration: float


@dataclass(frozen=True)
class Usage:
    cache_bytes: int
    quota: int
    disk_free: int
    disk_total: int


class Cache:
    def __init__(
        self, database: Database, root: Path, *, quota: int, min_free_bytes: int, clean_marker: Path,
    ) -> None:
        self._db = database
        self.root = root
        self.quota = quota
        self.min_free_bytes = min_free_bytes
        self._marker = clean_marker
        self.was_clean = True
        self._verify_lock = asyncio.Lock()
        self._opened = False

    def path(self, sha256: str) -> Path:
        return self.root / sha256

    def part(self, sha256: str) -> Path:
        return self.root / f"{sha256}.part"

    async def async_open(self) -> None:
        def prepare() -> bool:
            self.root.mkdir(parents=True, exist_ok=True)
            clean = self._marker.exists()
            self._marker.unlink(missing_ok=True)
            return clean

        self.was_clean = await asyncio.to_thread(prepare)
        self._opened = True
        if not self.was_clean:
            n = await self._db.write(_mark_uncertain)
            if n:
                log.warning("unclean shutdown: %d cached item(s) will be verified before use", n)

    async def async_close(self) -> None:
        """Mark a clean shutdown: next start trusts the ready states."""
        if self._opened:
            self._opened = False
            await asyncio.to_thread(self._marker.touch)

    # --- verification -----------------------------------------------------------------

    async def verify(
        self, sha256: str, *, rate: int = 0, stop: Callable[[], bool] | None = None,
    ) -> VerifiedMedia:
        """Hash the cached file now; NotReady (and the file removed) unless it matches.

        `rate` caps the reading in bytes per second (0: as fast as the disk goes). With
        `stop`, a background check: `stop()` is asked between two reads, and when it is
        true the hash ends with VerifyInterrupted and the item's state is left as it was.
        """
        row = await self._db.read(lambda c: q.item(c, sha256))
        if row is None or row.state not in ("ready", "verifying"):
            raise NotReady(f"{sha256[:12]} is not in the cache ({row.state if row else 'unknown'})")
        path = self.path(sha256)
        async with self._verify_lock:  # one full hash at a time keeps the disk and CPU calm
            try:
                digest, mtime_ns = await _in_thread(_hash_with_mtime, path, rate, stop)
            except FileNotFoundError:
                await self._db.write(lambda c: q.set_state(c, sha256, "queued", bytes_present=0,
                                                           error="the cached file disappeared"))
                raise NotReady(f"{sha256[:12]}: the cached file is missing; fetching again") from None
        if digest != sha256:
            log.error("cached %s is corrupt (hashes to %s): removed, to be fetched again",
                      sha256[:12], digest[:12])
            await asyncio.to_thread(path.unlink, True)
            await self._db.write(lambda c: q.set_state(c, sha256, "corrupt", bytes_present=0,
                                                       error=f"cached bytes hashed to {digest[:12]}"))
            raise NotReady(f"{sha256[:12]}: the cached file is corrupt; fetching again")
        now = to_db(utcnow())
        await self._db.write(lambda c: q.set_state(c, sha256, "ready", bytes_present=row.size,
                                                   verified_mtime_ns=mtime_ns, verified_at=now))
        return VerifiedMedia(sha256=sha256, path=path, title=row.title, duration=row.duration)

    async def mark_ready(self, sha256: str, size: int) -> None:
        """A download just verified these bytes and renamed them into place."""
        mtime_ns = (await asyncio.to_thread(os.stat, self.path(sha256))).st_mtime_ns
        now = to_db(utcnow())
        await self._db.write(lambda c: q.set_state(c, sha256, "ready", bytes_present=size,
                                                   verified_mtime_ns=mtime_ns, verified_at=now))

    async def mark_changed(self) -> tuple[int, int]:
        """A stat of every ready file: one whose size or modification time moved since its
        check becomes "verifying", one that is gone is queued to be fetched again.

        Returns (changed, missing). Cheap: no byte is read.
        """
        rows = [r for r in await self._db.read(q.items) if r.state == "ready"]

        def look() -> tuple[list[str], list[str]]:
            changed, missing = [], []
            for row in rows:
                try:
                    st = os.stat(self.path(row.sha256))
                except FileNotFoundError:
                    missing.append(row.sha256)
                    continue
                if st.st_size != row.size or st.st_mtime_ns != row.verified_mtime_ns:
                    changed.append(row.sha256)
            return changed, missing

        changed, missing = await asyncio.to_thread(look)
        if changed:
            log.warning("%d cached file(s) changed since their check: verifying them again", len(changed))
        for sha in missing:
            log.error("cached %s disappeared: to be fetched again", sha[:12])

        def record(c: sqlite3.Connection) -> None:
            q.mark_unverified(c, changed)
            for sha in missing:
                q.set_state(c, sha, "queued", bytes_present=0, error="the cached file disappeared")

        if changed or missing:
            await self._db.write(record)
        return len(changed), len(missing)

    # --- space ------------------------------------------------------------------------

    async def usage(self) -> Usage:
        def measure() -> Usage:
            used = 0
            for entry in os.scandir(self.root):
                with contextlib.suppress(FileNotFoundError):  # a .part renamed meanwhile
                    if entry.is_file(follow_symlinks=False):
                        used += entry.stat().st_size
            disk = shutil.disk_usage(self.root)
            return Usage(cache_bytes=used, quota=self.quota, disk_free=disk.free, disk_total=disk.total)

        return await asyncio.to_thread(measure)

    async def make_room(self, needed: int, keep: Iterable[str]) -> bool:
        """Evict until `needed` more bytes fit under the quota and the free-space floor."""
        keep = set(keep)
        usage = await self.usage()
        if self._fits(usage, needed):
            return True
        for row in await self._db.read(lambda c: q.eviction_order(c, keep)):
            await self.evict(row.sha256)
            usage = await self.usage()
            if self._fits(usage, needed):
                return True
        return False

    def _fits(self, usage: Usage, needed: int) -> bool:
        return (usage.cache_bytes + needed <= self.quota
                and usage.disk_free - needed >= self.min_free_bytes)

    async def evict(self, sha256: str) -> None:
        log.info("evicting %s from the cache", sha256[:12])

        def remove() -> None:
            self.path(sha256).unlink(missing_ok=True)
            self.part(sha256).unlink(missing_ok=True)

        await asyncio.to_thread(remove)
        await self._db.write(lambda c: q.forget(c, sha256))

    async def mark_played(self, sha256: str) -> None:
        now = to_db(utcnow())
        await self._db.write(lambda c: q.mark_played(c, sha256, now))


def _mark_uncertain(conn: sqlite3.Connection) -> int:
    return int(conn.execute("UPDATE items SET state = 'verifying' WHERE state = 'ready'").rowcount)


async def _in_thread(
    fn: Callable[[Path, int, Callable[[], bool] | None], tuple[str, int]],
    path: Path, rate: int, stop: Callable[[], bool] | None,
) -> tuple[str, int]:
    """Run a hash on a thread. A background hash (with `stop`) that is cancelled waits for
    its thread, which ends at its next read once `stop()` is true, so nothing outlives
    the terminal; a foreground one is simply left to finish."""
    if stop is None:
        return await asyncio.to_thread(fn, path, rate, stop)
    running = asyncio.ensure_future(asyncio.to_thread(fn, path, rate, stop))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await running
        raise


def _hash_with_mtime(path: Path, rate: int = 0, stop: Callable[[], bool] | None = None,
                     chunk: int = k.SCRUB_CHUNK) -> tuple[str, int]:
    """sha256 of the file and its modification time before the first read (blocking).

    Paced to `rate` bytes per second when positive; VerifyInterrupted once `stop()` is true.
    """
    before = os.stat(path).st_mtime_ns
    h = hashlib.sha256()
    started = time.monotonic()
    done = 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            done += len(block)
            if stop is not None and stop():
                raise VerifyInterrupted(f"{path.name[:12]}: stopped after {done} bytes")
            if rate > 0:
                # short naps, so a session that begins is not kept waiting for a long one
                while (ahead := done / rate - (time.monotonic() - started)) > 0:
                    time.sleep(min(ahead, 0.05))
                    if stop is not None and stop():
                        raise VerifyInterrupted(f"{path.name[:12]}: stopped after {done} bytes")
    return h.hexdigest(), before

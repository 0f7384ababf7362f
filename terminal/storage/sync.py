"""Keeping the cache in step with the catalog.

One cycle: fetch the catalog (ETag, 304), refresh the roster, then download what is
missing, needed-sooner first, while the download window is open and there is room
(hashing cached files again is the scrub's work, `terminal.storage.scrub`). A full disk
pauses downloads with a clear condition; an expired catalog adds nothing new ("stale")
while the cache still plays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from shared.peers import PeerSource
from shared.pieces import PieceCheck, check_prefix
from shared.protocol import CatalogItem
from shared.sqlite import Database
from shared.timeutil import from_db, utcnow
from terminal.errors import (
    BadSource,
    CatalogRejected,
    DiskFull,
    DownloadFailed,
    ServerRefused,
    ServerUnreachable,
)
from terminal.network.client import ServerClient
from terminal.network.peers import PeerFetcher
from terminal.network.swarm import Source, Swarm
from terminal.storage import db as q
from terminal.storage.cache import Cache
from terminal.storage.catalog import CatalogKeeper
from terminal.storage.downloader import Downloader, Fetched
from terminal.storage.window import DownloadWindow

log = logging.getLogger(__name__)
VILLAGE_NAME = "village_name"  # from the roster, for the TV's home screen


class _WaitForPeer(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"wait {seconds} s")
        self.seconds = seconds

WINDOW_OVERRIDE = "window_override_until"
SESSION_KEEP = timedelta(hours=12)  # a session that began this morning still needs its items


class Syncer:
    def __init__(
        self, database: Database, keeper: CatalogKeeper, cache: Cache, downloader: Downloader,
        window: DownloadWindow, *, progress_save_seconds: float = 2.0,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._db = database
        self._keeper = keeper
        self._cache = cache
        self._downloader = downloader
        self.window = window
        self._save_every = progress_save_seconds
        self._on_change = on_change or (lambda: None)
        self.condition = "ok"  # or why downloads are not running, in words
        self.progress: dict[str, tuple[int, int]] = {}  # sha256 -> (bytes present, size)
        self._saved_at: dict[str, float] = {}
        self.busy: set[str] = set()  # items being written right now (download or USB stick)
        self.peers: PeerFetcher | None = None  # set when this terminal fetches from peers
        self.bytes_from_server = 0
        self.bytes_from_peers = 0
        self.retry_in: float | None = None  # an item waits for a LAN peer: look again then

    def on_progress(self, sha256: str, present: int, size: int) -> None:
        """Called by the downloader per block: kept in memory, written now and then."""
        self.progress[sha256] = (present, size)

    async def save_progress(self) -> None:
        now = time.monotonic()
        for sha256, (present, _size) in list(self.progress.items()):
            if now - self._saved_at.get(sha256, 0.0) >= self._save_every:
                self._saved_at[sha256] = now
                await self._db.write(partial(q.set_progress, sha256=sha256, bytes_present=present))

    def upcoming_items(self, now: datetime | None = None) -> set[str]:
        catalog = self._keeper.catalog
        if catalog is None:
            return set()
        since = (now or utcnow()) - SESSION_KEEP
        return {sha for s in catalog.sessions if s.starts_at >= since for sha in s.items}

    async def window_open(self) -> bool:
        raw = await self._db.read(lambda c: q.get_kv(c, WINDOW_OVERRIDE))
        return self.window.is_open(utcnow(), from_db(raw) if raw else None)

    async def cycle(self, client: ServerClient) -> None:
        """One pass; ServerUnreachable propagates for the caller's backoff."""
        answer = await client.catalog(self._keeper.etag)
        if answer.envelope is not None:
            try:
                await self._keeper.async_apply(answer.envelope, answer.etag)
            except CatalogRejected as e:
                log.error("catalog rejected, the one held stays in force: %s", e)
        try:
            roster = await client.roster()
        except ServerRefused as e:  # sign-in keeps the roster held; content still syncs
            log.warning("the roster could not be refreshed: %s", e)
        else:
            def keep(c: sqlite3.Connection) -> None:
                q.replace_roster(c, roster.members)
                q.set_kv(c, VILLAGE_NAME, roster.village_name)

            await self._db.write(keep)
        if self._keeper.catalog is None:
            self.condition = "no catalog yet"
            return
        if self._keeper.expired():
            self.condition = "stale: the catalog has expired; playing the cache, adding nothing new"
            log.warning("%s", self.condition)
            return
        await self.download(client)

    async def download(self, client: ServerClient) -> None:
        self.condition = "ok"
        self.retry_in = None
        for row in await self._db.read(q.wanted):
            if row.sha256 in self.busy:
                continue  # a USB stick is filling it right now
            if not await self.window_open():
                self.condition = f"waiting for the download window ({self.window})"
                return
            need = row.size - (row.bytes_present if row.state == "downloading" else 0)
            if not await self._cache.make_room(max(0, need), self.upcoming_items()):
                self.condition = (f"disk full: downloads paused, {row.title or row.sha256[:12]} "
                                  f"needs {need} more bytes; the cache still plays")
                log.warning("%s", self.condition)
                return
            if not await self._fetch(client, row):
                return
        self._on_change()

    async def _from_peers(self, client: ServerClient, row: q.ItemRow,
                          item: CatalogItem | None) -> Fetched | None:
        """The item from the first peer that gives it whole and verified, or None. Only
        with piece hashes: a peer is trusted for nothing, every piece is checked."""
        if self.peers is None or item is None or not item.pieces:
            return None
        sha = row.sha256
        found, wait = await self.peers.sources(client, sha)
        if wait > 0 and not found:
            raise _WaitForPeer(wait)
        if len(found) >= 2:
            swarmed = await self._swarm(client, row, item, found)
            if swarmed is not None:
                return swarmed
            found = [s for s in found if s.terminal_id not in self.peers.bad_peers]
        for source in found:
            headers = await self.peers.headers(client, sha)
            if headers is None:
                return None
            before = self._downloader.received_total
            try:
                fetched = await self._downloader.fetch(
                    source.url + "/peer", sha, row.size, self._cache.part(sha),
                    self._cache.path(sha), headers, piece_size=item.piece_size,
                    pieces=item.pieces, strict=True)
            except BadSource as e:
                log.error("peer %s sent bytes that do not verify (%s): it is not asked again",
                          source.terminal_id, e)
                self.peers.caught(source.terminal_id)
            except (DownloadFailed, ServerUnreachable) as e:
                log.warning("peer %s could not give %s (%s); trying the next source",
                            source.terminal_id, sha[:12], e)
            else:
                log.info("%s came from peer %s", sha[:12], source.terminal_id)
                return fetched
            finally:
                await self._count_peer_bytes(sha, self._downloader.received_total - before)
        return None

    async def _count_peer_bytes(self, sha: str, count: int) -> None:
        self.bytes_from_peers += count
        if count > 0:
            await self._db.write(lambda c: q.add_peer_bytes(c, sha, count))

    async def _swarm(self, client: ServerClient, row: q.ItemRow, item: CatalogItem,
                     found: list[PeerSource]) -> Fetched | None:
        """The item's pieces from several peers at once; None when they ran out (the
        verified pieces stay for the next source)."""
        assert self.peers is not None
        sha = row.sha256
        headers = await self.peers.headers(client, sha)
        if headers is None:
            return None
        part = self._cache.part(sha)
        check = PieceCheck(row.size, item.piece_size, item.pieces)
        have = await asyncio.to_thread(_verified_prefix, check, part)
        swarm = Swarm(self._downloader.http, sha, row.size, item.piece_size, item.pieces, part,
                      self._cache.path(sha))
        try:
            result = await swarm.run(
                [Source(s.terminal_id, f"{s.url}/peer/blobs/{sha}", headers) for s in found], have)
        except DownloadFailed as e:
            log.warning("%s: %s; going on with the next source", sha[:12], e)
            result = swarm.result
            fetched = None
        else:
            log.info("%s came from %d peers at once", sha[:12], len(result.received))
            fetched = Fetched(sha256=sha, path=self._cache.path(sha), resumed_from=have,
                              restarts=0, received=sum(result.received.values()))
        await self._count_peer_bytes(sha, sum(result.received.values()))
        for bad in result.bad:
            self.peers.caught(bad)
        return fetched

    async def _fetch(self, client: ServerClient, row: q.ItemRow) -> bool:
        """Fetch one item; False when downloads must pause."""
        sha = row.sha256
        await self._db.write(lambda c: q.set_state(c, sha, "downloading"))
        self._on_change()
        item = self._keeper.item(sha)
        self.busy.add(sha)
        try:
            try:
                fetched = await self._from_peers(client, row, item)
            except _WaitForPeer as w:
                log.info("%s: a terminal on this LAN is fetching it from the server; "
                         "asking again in %.0f s", sha[:12], w.seconds)
                self.retry_in = min(self.retry_in or w.seconds, w.seconds)
                await self._db.write(lambda c: q.set_state(c, sha, "queued"))
                return True
            if fetched is None:
                before = self._downloader.received_total
                try:
                    fetched = await self._downloader.fetch(
                        client.base_url, sha, row.size, self._cache.part(sha),
                        self._cache.path(sha), client.auth,
                        piece_size=item.piece_size if item else 0,
                        pieces=item.pieces if item else (),
                    )
                finally:
                    self.bytes_from_server += self._downloader.received_total - before
        except DiskFull as e:
            self.condition = f"disk full: downloads paused ({e}); the cache still plays"
            log.warning("%s", self.condition)
            why = str(e)
            await self._db.write(lambda c: q.set_state(c, sha, "queued", error=why))
            return False
        except DownloadFailed as e:
            log.error("download of %s failed: %s", sha[:12], e)
            why = str(e)
            await self._db.write(lambda c: q.set_state(c, sha, "failed", error=why))
            return True
        finally:
            self.progress.pop(sha, None)
            self.busy.discard(sha)
        if fetched.pieces_refetched:
            log.warning("%s: %d piece(s) failed their check and were fetched again",
                        sha[:12], fetched.pieces_refetched)
        if fetched.resumed_from:
            await self._db.write(lambda c: q.set_resumed(c, sha, fetched.resumed_from))
        await self._cache.mark_ready(sha, row.size)
        log.info("ready: %s (%s, %d bytes%s)", sha[:12], row.title, row.size,
                 f", resumed from byte {fetched.resumed_from}" if fetched.resumed_from else "")
        self._on_change()
        return True


def _verified_prefix(check: PieceCheck, part: Path) -> int:
    """Whole verified pieces at the start of `part`; the file is cut there (blocking)."""
    with contextlib.suppress(FileNotFoundError):
        have = min(part.stat().st_size, check.size)
        good = check_prefix(check, part, have)
        good -= good % check.piece_size if good < check.size else 0
        os.truncate(part, good)
        return good
    return 0

"""A USB stick at the terminal: take in what verifies, hand back attendance and state.

`UsbExchange.run(stick)` does the village half of the round trip (layout in
`shared.bundle`):

1. The stick's catalog for this terminal is checked exactly like one from the network
   (the pinned key, this terminal's id, no rollback) and, if it passes, put in force.
2. Every assigned item not yet ready is copied from the stick's parts into the cache's
   `<sha256>.part`, each piece checked against the catalog in force as it is copied; the
   whole file is hashed before it is fsynced, renamed and marked ready, as a download is.
   A part missing from a half-copied stick, or a piece that does not verify, stops that
   item at the last good piece: the verified prefix stays as the `.part` a later download
   (or stick) continues from, and the report lists the item as missing or damaged.
3. The terminal's undelivered attendance and its state are written onto the stick as
   records signed with its own key (made at enrollment), for the county to import. They
   stay in the outbox until the network acknowledges them: the county's import stores
   each record once, however many sticks carry it.

Nothing from the stick is believed that the pinned server key does not vouch for.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from shared import bundle as b
from shared.files import fsync_dir, fsync_file
from shared.pieces import BadPiece, PieceCheck, check_prefix
from shared.protocol import AttendanceBatch, CatalogItem, Heartbeat, SignedCatalog
from shared.signing import public_key_bytes
from shared.sqlite import Database
from shared.timeutil import utcnow
from terminal.errors import CatalogRejected
from terminal.playback.clock import Clock
from terminal.playback.outbox import to_wire
from terminal.storage import db as q
from terminal.storage.cache import Cache
from terminal.storage.catalog import ETAG, CatalogKeeper

log = logging.getLogger(__name__)

OWN_KEY: Final = "terminal_private_key"  # PEM of this terminal's Ed25519 key (kv table)
MAX_CATALOG_BYTES: Final = 32 << 20
RECORDS_PER_FILE: Final = 1000  # what one AttendanceBatch may hold

StateSource = Callable[[], Awaitable[Heartbeat]]
Progress = Callable[[str, int, int], None]  # sha256, bytes taken in, size


def new_key() -> tuple[str, str]:
    """A fresh key pair for enrollment: (private PEM, base64 raw public key)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    return pem, base64.b64encode(public_key_bytes(key.public_key())).decode()


async def own_key(database: Database) -> Ed25519PrivateKey | None:
    pem = await database.read(lambda c: q.get_kv(c, OWN_KEY))
    if not pem:
        return None
    key = load_pem_private_key(pem.encode(), password=None)
    return key if isinstance(key, Ed25519PrivateKey) else None


@dataclass
class UsbReport:
    """What one stick gave and took. Item lists hold sha256s."""

    directory: str
    catalog: str = ""  # "applied", "none on the stick", or why it was refused
    imported: list[str] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)  # not whole on the stick: bytes taken
    damaged: dict[str, str] = field(default_factory=dict)  # bytes that do not verify: why
    skipped: dict[str, str] = field(default_factory=dict)  # not tried: why (no room, busy)
    records_written: int = 0
    returns: list[str] = field(default_factory=list)  # files written under returns/
    returns_error: str = ""

    @property
    def complete(self) -> bool:
        return not (self.missing or self.damaged or self.skipped or self.returns_error)


class UsbExchange:
    def __init__(
        self, database: Database, keeper: CatalogKeeper, cache: Cache, terminal_id: str, *,
        state: StateSource | None = None, busy: set[str] | None = None,
        keep: Callable[[], set[str]] | None = None, progress: Progress | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock  # its anchors let the county place records whose clock was unconfirmed
        self._db = database
        self._keeper = keeper
        self._cache = cache
        self._terminal_id = terminal_id
        self._state = state
        self._busy = busy if busy is not None else set()  # shas a download holds right now
        self._keep = keep or set
        self._progress = progress

    async def run(self, stick: Path) -> UsbReport:
        report = UsbReport(directory=str(stick))
        await self._catalog(stick, report)
        if self._keeper.catalog is not None and not self._keeper.expired():
            for row in await self._db.read(q.wanted):
                await self._item(stick, row, report)
        try:
            await self._returns(stick, report)
        except OSError as e:
            report.returns_error = f"the returns could not be written: {e.strerror or e}"
            log.error("%s", report.returns_error)
        log.info("USB %s: catalog %s; %d item(s) imported, %d missing, %d damaged; %d record(s) "
                 "written back", stick, report.catalog, len(report.imported), len(report.missing),
                 len(report.damaged), report.records_written)
        return report

    # --- in ---------------------------------------------------------------------------

    async def _catalog(self, stick: Path, report: UsbReport) -> None:
        path = b.catalog_path(stick, self._terminal_id)
        try:
            data = await asyncio.to_thread(_read_small, path, MAX_CATALOG_BYTES)
        except FileNotFoundError:
            report.catalog = "none on the stick"
            return
        except (OSError, ValueError) as e:
            report.catalog = f"unreadable: {e}"
            return
        try:
            envelope = msgspec.json.decode(data, type=SignedCatalog)
            await self._keeper.async_apply(envelope, None)
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            report.catalog = f"refused: not a signed catalog ({e})"
        except CatalogRejected as e:
            report.catalog = f"refused: {e}"
            log.error("the stick's catalog was refused, the one held stays in force: %s", e)
        else:
            report.catalog = "applied"
            # the next network check fetches in full rather than trusting an older ETag
            await self._db.write(lambda c: q.del_kv(c, ETAG))
            self._keeper.etag = None

    async def _item(self, stick: Path, row: q.ItemRow, report: UsbReport) -> None:
        sha = row.sha256
        item = self._keeper.item(sha)
        if not await asyncio.to_thread(b.part_path(stick, sha, 0).is_file):
            report.missing[sha] = 0
            return
        if item is None or not PieceCheck(item.size, item.piece_size, item.pieces).checked:
            report.skipped[sha] = "the catalog has no piece hashes for it"
            return
        if sha in self._busy:
            report.skipped[sha] = "being downloaded right now"
            return
        if not await self._cache.make_room(row.size, self._keep()):
            report.skipped[sha] = "no room in the cache"
            return
        self._busy.add(sha)
        try:
            await self._db.write(lambda c: q.set_state(c, sha, "downloading"))
            await self._copy(stick, item, report)
        finally:
            self._busy.discard(sha)

    async def _copy(self, stick: Path, item: CatalogItem, report: UsbReport) -> None:
        sha, size = item.sha256, item.size
        check = PieceCheck(size, item.piece_size, item.pieces)
        part, dest = self._cache.part(sha), self._cache.path(sha)
        loop = asyncio.get_running_loop()
        progress = self._progress

        def tell(offset: int) -> None:
            if progress is not None:
                loop.call_soon_threadsafe(progress, sha, offset, size)

        outcome = await asyncio.to_thread(_copy_verified, stick, sha, check, part, tell)
        if check.offset == size and not outcome:
            if check.whole() == sha:
                await asyncio.to_thread(_commit, part, dest)
                await self._cache.mark_ready(sha, size)
                report.imported.append(sha)
                log.info("ready from USB: %s (%s, %d bytes)", sha[:12], item.title, size)
                return
            outcome = f"the whole file hashes to {check.whole()[:12]}"
            await asyncio.to_thread(part.unlink, True)
            check.reset()
        present = check.offset
        await self._db.write(lambda c: q.set_state(c, sha, "queued", bytes_present=present,
                                                   error=outcome or "incomplete on the USB stick"))
        if outcome:
            report.damaged[sha] = outcome
            log.error("USB copy of %s stopped at byte %d: %s", sha[:12], present, outcome)
        else:
            report.missing[sha] = present

    # --- out --------------------------------------------------------------------------

    async def _returns(self, stick: Path, report: UsbReport) -> None:
        key = await own_key(self._db)
        if key is None:
            report.returns_error = ("this terminal has no key of its own (enrolled before USB "
                                    "bundles): enroll it again to carry attendance by stick")
            return
        now = self._clock.now() if self._clock is not None else utcnow()
        rows = await self._db.read(lambda c: q.closed_records(c, 1_000_000))
        files: list[tuple[str, bytes]] = []
        for n, start in enumerate(range(0, len(rows), RECORDS_PER_FILE)):
            records = [to_wire(r) for r in rows[start:start + RECORDS_PER_FILE]]
            anchors = self._clock.anchors_for(r.boot_id for r in records) if self._clock else []
            record = b.ReturnRecord(kind="attendance", terminal_id=self._terminal_id, written_at=now,
                                    attendance=AttendanceBatch(terminal_clock=now, records=records,
                                                               anchors=anchors))
            files.append((f"{b.stamp(now)}-attendance-{n:03d}.json", b.sign_return(key, record)))
        if self._state is not None:
            record = b.ReturnRecord(kind="state", terminal_id=self._terminal_id, written_at=now,
                                    state=await self._state())
            files.append((f"{b.stamp(now)}-state.json", b.sign_return(key, record)))
        folder = b.returns_dir(stick, self._terminal_id)
        for name, data in files:
            await asyncio.to_thread(b.write_atomic, folder / name, data)
            report.returns.append(f"{self._terminal_id}/{name}")
        report.records_written = len(rows)


def _read_small(path: Path, limit: int) -> bytes:
    if path.stat().st_size > limit:
        raise ValueError(f"{path.name} is larger than {limit} bytes")
    return path.read_bytes()


def _copy_verified(stick: Path, sha: str, check: PieceCheck, part: Path,
                   tell: Callable[[int], None]) -> str:
    """Continue `part` from the stick, piece-checked (blocking). Returns "" when it ran
    out of stick (or finished), or why it stopped at a bad piece."""
    with contextlib.suppress(FileNotFoundError):
        have = part.stat().st_size
        if have > check.size:
            part.unlink()
        elif have:
            good = check_prefix(check, part, have)
            if good < have:
                os.truncate(part, good)
    try:
        part_size = b.part_path(stick, sha, 0).stat().st_size
    except FileNotFoundError:
        return ""
    if part_size <= 0 or (part_size % check.piece_size and part_size != check.size):
        return f"the stick's parts are {part_size} bytes, not whole pieces"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while check.offset < check.size:
            index, within = divmod(check.offset, part_size)
            left = min(part_size, check.size - index * part_size) - within
            path = b.part_path(stick, sha, index)
            if not path.is_file():
                return ""  # a half-copied stick: the rest comes later
            with open(path, "rb") as f:
                f.seek(within)
                while left:
                    block = f.read(min(1 << 20, left))
                    if not block:
                        return ""  # a part shorter than it should be: wait for a better copy
                    view = memoryview(block)
                    while view:
                        view = view[os.write(fd, view):]
                    try:
                        check.feed(block)
                    except BadPiece as e:
                        os.ftruncate(fd, e.start)
                        return f"on the stick, {e}"
                    left -= len(block)
                    tell(check.offset)
        return ""
    finally:
        os.fsync(fd)
        os.close(fd)


def _commit(part: Path, dest: Path) -> None:
    fsync_file(part)
    os.replace(part, dest)
    fsync_dir(dest.parent)


def store_key(conn: sqlite3.Connection, pem: str) -> None:
    q.set_kv(conn, OWN_KEY, pem)

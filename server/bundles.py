"""USB bundles at the county: writing sticks for villages, reading back what they return.

`write_bundle` puts, for the chosen terminals, their freshly signed catalogs and every
item one of them lacks (by its last report) onto a mounted stick, in the layout of
`shared.bundle`. Each part is written under a `.tmp` name, fsynced and renamed; run
again on the same stick it keeps every part whose pieces still hash right and writes the
rest, so a copy that was cut (a full stick, a pulled cable) is finished, not redone.

`import_returns` reads every `returns/<terminal>/` file, believes only those signed by
the key that terminal enrolled with, and ingests the attendance through the same
idempotent path as the network (a record stored once, however often the stick is read).

Both take a `county_code` (None: the province): a county's bundles are for its terminals
alone, another county's named terminal being unknown, and returns from another county's
terminals are refused as from an unknown one, nothing of them stored.

Both block on the stick; they run their file work on threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import msgspec
from sqlalchemy import Connection

from server import catalog
from server.config import ServerConfig
from server.db import Database
from server.media.store import BlobStore, local_file
from server.queries import attendance, county, fleet, pieces, rollups
from server.queries import bundles as q
from server.signer import Signer
from shared import bundle as b
from shared.files import fsync_dir
from shared.pieces import piece_count, piece_hashes
from shared.protocol import Catalog, Heartbeat
from shared.signing import load_public_key
from shared.timeutil import utcnow

log = logging.getLogger(__name__)

README = """远教 U 盘包 (Yuanjiao USB bundle)

这个 U 盘装着县远教办给村终端站点的节目和目录, 以及终端交回的学习记录。
请勿改动、删除或重命名其中的文件。插到终端上, 在电视上选择"U 盘导入",
或运行: yuanjiao-terminal usb import <U 盘目录>
带回县里后导入: yuanjiao-server bundle import <U 盘目录>

This stick carries content for village terminals and brings their attendance back.
Do not change, delete or rename anything in it. See docs/usb-courier.md.
"""


@dataclass
class BundleReport:
    """What a bundle write did; `complete` is False when the stick filled up."""

    directory: str
    terminals: list[str] = field(default_factory=list)
    skipped_terminals: dict[str, str] = field(default_factory=dict)
    items: int = 0
    parts_written: int = 0
    parts_kept: int = 0  # already whole and verified on the stick
    bytes_written: int = 0
    missing: list[str] = field(default_factory=list)  # items not whole on the stick
    complete: bool = True
    message: str = ""


@dataclass
class ReturnsReport:
    """What a returns import took in, per terminal, and what it refused and why."""

    directory: str
    files: int = 0
    already_imported: int = 0
    records_new: int = 0
    records_duplicate: int = 0
    states: int = 0
    terminals: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # file (relative) -> reason


class BundleError(Exception):
    """The stick cannot be used at all (not a directory, nothing chosen)."""


class StickFull(Exception):
    """The stick stopped taking bytes: full, a file too large for it, or pulled out."""


# ENOSPC full; EPERM is what fusefat answers when full; EFBIG a file too large for FAT;
# EIO a stick pulled out or failing
_STICK_STOPPED = (errno.ENOSPC, errno.EPERM, errno.EFBIG, errno.EIO, errno.EDQUOT)


async def write_bundle(
    db: Database, store: BlobStore, signer: Signer, config: ServerConfig, server_id: str,
    stick: Path, *, township: str | None = None, terminal_ids: tuple[str, ...] = (),
    offline: bool = False, part_limit: int = b.FAT32_PART, county_code: str | None = None,
) -> BundleReport:
    """Write a bundle for the chosen terminals (of `county_code`, when given) onto `stick`
    (a mounted directory)."""
    if not await asyncio.to_thread(stick.is_dir):
        raise BundleError(f"{stick} is not a directory: mount the stick and name its folder")
    now = utcnow()
    online_after = timedelta(seconds=config.heartbeat_interval * config.online_missed_heartbeats)
    rows, skipped = await db.read(lambda c: _choose(
        c, county_code, township=township, terminal_ids=terminal_ids,
        offline_before=now - online_after if offline else None))
    if not rows:
        raise BundleError("no enrolled terminal matches the choice; nothing to write"
                          + (f" ({'; '.join(f'{k}: {v}' for k, v in skipped.items())})" if skipped else ""))
    report = BundleReport(directory=str(stick), terminals=[r.id for r in rows],
                          skipped_terminals=skipped)
    wanted: dict[str, tuple[int, int, list[str]]] = {}  # sha -> (size, piece size, pieces)
    signed: dict[str, bytes] = {}
    for r in rows:
        d = await db.read(partial(catalog.draft, config=config, terminal_id=r.id,
                                  village_code=r.village_code, unit_code=r.unit_code, now=now))
        body = catalog.sign(d, signer, config, now)
        signed[r.id] = body
        held = await db.read(partial(fleet.ready_hashes, terminal_id=r.id))
        items = msgspec.json.decode(
            bytes(msgspec.json.decode(body, type=dict[str, msgspec.Raw])["catalog"]), type=Catalog).items
        for item in items:
            if item.sha256 not in held:
                wanted[item.sha256] = (item.size, item.piece_size, list(item.pieces))
    report.items = len(wanted)
    manifest_items = []
    for sha, (size, piece_size, hashes) in wanted.items():
        if not hashes:  # the backfill has not reached it yet: hash it now
            piece_size = config.piece_size
            async with local_file(store, sha, config.uploads_dir) as src:
                hashes = await asyncio.to_thread(piece_hashes, src, piece_size)
            await db.write(partial(pieces.store, sha256=sha, piece_size=piece_size, hashes=hashes))
        wanted[sha] = (size, piece_size, hashes)
        part_size = b.part_size_for(piece_size, part_limit)
        manifest_items.append(b.ManifestItem(sha256=sha, size=size, part_size=part_size,
                                             parts=piece_count(size, part_size)))
    manifest = b.BundleManifest(
        format=b.FORMAT, written_at=now, server_id=server_id, key_fingerprint=signer.fingerprint,
        terminals=report.terminals, items=manifest_items)
    try:
        await asyncio.to_thread(_write_head, stick, manifest, signed)
        for m in manifest_items:
            size, piece_size, hashes = wanted[m.sha256]
            # from a bucket, one item at a time is fetched to the server's disk, then copied
            async with local_file(store, m.sha256, config.uploads_dir) as src:
                for index in range(m.parts):
                    wrote = await asyncio.to_thread(
                        _write_part, src, stick, m.sha256, index, m.part_size,
                        size, piece_size, hashes)
                    if wrote:
                        report.parts_written += 1
                        report.bytes_written += wrote
                    else:
                        report.parts_kept += 1
    except StickFull as e:
        report.complete = False
        report.message = (f"the stick stopped taking bytes ({e}): it is full or was pulled out; "
                          "run again on the same stick with room made, or on a larger one")
        log.warning("bundle on %s: %s", stick, report.message)
    report.missing = [m.sha256 for m in manifest_items
                      if not await asyncio.to_thread(_whole_on_stick, stick, m)]
    report.complete = not report.missing and report.complete
    log.info("bundle on %s for %d terminal(s): %d item(s), %d part(s) written (%d bytes), "
             "%d kept, %d missing", stick, len(report.terminals), report.items,
             report.parts_written, report.bytes_written, report.parts_kept, len(report.missing))
    return report


def _choose(
    c: Connection, county_code: str | None, *, township: str | None,
    terminal_ids: tuple[str, ...], offline_before: datetime | None,
) -> tuple[list[q.BundleTerminal], dict[str, str]]:
    """`q.select_terminals`, kept to `county_code`'s terminals when one is given: another
    county's terminal named by id is skipped as unknown, one of another county's township
    or offline ones is not mentioned at all."""
    rows, skipped = q.select_terminals(c, township=township, terminal_ids=terminal_ids,
                                       offline_before=offline_before)
    if county_code is None:
        return rows, skipped
    ours = county.county_terminals(c, county_code)
    unknown = {i: "unknown terminal" for i in terminal_ids if i not in ours}
    return ([r for r in rows if r.id in ours],
            unknown | {i: why for i, why in skipped.items() if i in ours})


def _write_head(stick: Path, manifest: b.BundleManifest, signed: dict[str, bytes]) -> None:
    try:
        b.write_atomic(b.root(stick) / "README.txt", README.encode())
        b.write_atomic(b.root(stick) / "bundle.json", msgspec.json.encode(manifest))
        for terminal_id, body in signed.items():
            b.write_atomic(b.catalog_path(stick, terminal_id), body)
        (b.root(stick) / "returns").mkdir(exist_ok=True)
    except OSError as e:
        if e.errno in _STICK_STOPPED:
            raise StickFull(str(e)) from e
        raise


def _write_part(src: Path, stick: Path, sha: str, index: int, part_size: int, size: int,
                piece_size: int, hashes: list[str]) -> int:
    """Copy one part unless it is already whole and verified; returns bytes written."""
    start = index * part_size
    length = min(part_size, size - start)
    dest = b.part_path(stick, sha, index)
    if _part_verifies(dest, start, length, piece_size, hashes):
        return 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            fin.seek(start)
            left = length
            while left:
                block = fin.read(min(1 << 20, left))
                if not block:
                    raise OSError(f"{src} ended early")
                fout.write(block)
                left -= len(block)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if e.errno in _STICK_STOPPED:
            raise StickFull(f"writing {dest.name} of {sha[:12]}") from e
        raise
    return length


def _part_verifies(path: Path, start: int, length: int, piece_size: int, hashes: list[str]) -> bool:
    """True when the part on the stick has its length and every piece in it hashes right."""
    try:
        if path.stat().st_size != length:
            return False
        with open(path, "rb") as f:
            first = start // piece_size
            for i in range(piece_count(length, piece_size)):
                h = hashlib.sha256()
                left = min(piece_size, length - i * piece_size)
                while left:
                    block = f.read(min(1 << 20, left))
                    if not block:
                        return False
                    h.update(block)
                    left -= len(block)
                if h.hexdigest() != hashes[first + i]:
                    return False
    except FileNotFoundError:
        return False
    return True


def _whole_on_stick(stick: Path, m: b.ManifestItem) -> bool:
    for index in range(m.parts):
        want = min(m.part_size, m.size - index * m.part_size)
        try:
            if b.part_path(stick, m.sha256, index).stat().st_size != want:
                return False
        except FileNotFoundError:
            return False
    return True


# --- returns ---------------------------------------------------------------------------


async def import_returns(db: Database, stick: Path, basis: rollups.Basis,
                         county_code: str | None = None) -> ReturnsReport:
    """Ingest every terminal's returns on `stick` that its enrolled key vouches for
    (`basis`: the report roll-ups the records are added to); with `county_code`, only
    those of that county's terminals, the rest refused as from unknown terminals."""
    base = b.root(stick) / "returns"
    if not await asyncio.to_thread(stick.is_dir):
        raise BundleError(f"{stick} is not a directory: mount the stick and name its folder")
    report = ReturnsReport(directory=str(stick))
    files = await asyncio.to_thread(_return_files, base)
    keys = await db.read(q.public_keys)
    ours = None if county_code is None else await db.read(
        partial(county.county_terminals, county=county_code))
    seen: set[str] = set()
    for path in files:
        name = str(path.relative_to(b.root(stick)))
        report.files += 1
        dir_terminal = path.parent.name
        try:
            data = await asyncio.to_thread(_read_small, path)
        except (OSError, ValueError) as e:
            report.refused[name] = f"unreadable: {e}"
            continue
        if ours is not None and dir_terminal not in ours:  # before asking if it was taken in
            report.refused[name] = _not_enrolled(dir_terminal)
            continue
        digest = b.digest(data)
        if await db.read(partial(q.return_known, digest=digest)):
            report.already_imported += 1
            continue
        if dir_terminal not in keys:
            report.refused[name] = _not_enrolled(dir_terminal)
            continue
        key_b64 = keys[dir_terminal]
        try:
            record = b.open_return(data, load_public_key(key_b64) if key_b64 else None)
        except (b.BadReturn, ValueError) as e:
            report.refused[name] = str(e)
            continue
        if record.terminal_id != dir_terminal:
            report.refused[name] = f"signed by {dir_terminal} but about {record.terminal_id}"
            continue
        now = utcnow()
        written = min(record.written_at, now)
        if record.kind == "attendance" and record.attendance is not None:
            # The stick carries no receive time: the batch's own clock anchor (its monotonic
            # reading against the time the server receives it) would place the records weeks
            # off, so only what the records themselves carry places them (a confirmed clock,
            # anchors learned from earlier heartbeats); the rest is flagged for a person.
            batch = msgspec.structs.replace(record.attendance, boot_id=None, monotonic=None)
            prepared = attendance.prepare(batch, written)
            result = await db.write(partial(
                _take_attendance, terminal_id=dir_terminal, prepared=prepared,
                clock=batch.terminal_clock, digest=digest, written=written, now=now,
                basis=basis))
            if result.conflicts:
                report.refused[name] = (f"{len(result.conflicts)} record id(s) were stored before "
                                        "with different contents; nothing from this file was stored")
                continue
            report.records_new += len(result.accepted) - result.duplicates
            report.records_duplicate += result.duplicates
        elif record.kind == "state" and record.state is not None:
            await db.write(partial(_take_state, terminal_id=dir_terminal, state=record.state,
                                   digest=digest, written=written, now=now))
            report.states += 1
        else:
            report.refused[name] = f"a {record.kind} return without its body"
            continue
        seen.add(dir_terminal)
    report.terminals = sorted(seen)
    log.info("returns from %s: %d file(s), %d new record(s), %d duplicate(s), %d state(s), "
             "%d already imported, %d refused", stick, report.files, report.records_new,
             report.records_duplicate, report.states, report.already_imported, len(report.refused))
    return report


def _not_enrolled(terminal_id: str) -> str:
    return f"{terminal_id} is not an enrolled terminal of this county"


def _take_attendance(
    c: Connection, terminal_id: str, prepared: attendance.PreparedBatch, clock: datetime,
    digest: str, written: datetime, now: datetime, basis: rollups.Basis,
) -> attendance.IngestResult:
    result = attendance.ingest(c, terminal_id, prepared, clock, now, basis)
    if not result.conflicts:  # a refused file is not marked, so it is reported every time
        q.record_return(c, digest, terminal_id, "attendance", written, now)
    return result


def _take_state(c: Connection, terminal_id: str, state: Heartbeat, digest: str,
                written: datetime, now: datetime) -> None:
    q.record_state(c, terminal_id, state)
    q.record_return(c, digest, terminal_id, "state", written, now)


def _return_files(base: Path) -> list[Path]:
    if not base.is_dir():
        return []
    return sorted(p for p in base.glob("*/*.json") if p.is_file())


def _read_small(path: Path) -> bytes:
    size = path.stat().st_size
    if size > b.MAX_RETURN_BYTES:
        raise ValueError(f"{size} bytes, more than a return file can hold")
    return path.read_bytes()

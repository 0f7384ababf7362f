"""The terminal's scrub against a plain sha256 of the same file.

    python3 bench/bench_scrub.py [--quick] [--size-mib N] [--capped-mib M] [--runs R]

A file of N MiB of random bytes is written into a terminal cache (a real `Cache` on a
real terminal database, the file recorded as a ready item). Before every run the file's
pages are dropped from the page cache (fsync, then `posix_fadvise(DONTNEED)`), so each
run reads from the disk as a scrub of a file played days ago would.

* reference: `shared.hashing.sha256_file` on a thread (plain reads, no pacing);
* scrub, no cap: `Cache.verify(rate=0)` with a stop check between reads, as the scrub
  calls it, including its database reads and writes;
* scrub at the default cap (`terminal.constants.SCRUB_RATE`) over the first M MiB
  (a copy of that size), to show the pace it keeps and the CPU it costs;
* how soon a capped scrub gives way when a session begins (the stop check turning true).

Prints MB/s, the ratio to the reference, and the CPU share (CPU seconds of this process
per wall second: 1.00 is one core busy) for each. Median of R runs.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from _common import MiB, machine, median, table, temp_dir

from shared.hashing import sha256_file
from shared.protocol import CatalogItem, ContentKind
from shared.sqlite import Database
from terminal import constants as k
from terminal.errors import VerifyInterrupted
from terminal.storage import db as q
from terminal.storage.cache import Cache
from terminal.storage.migrations import MIGRATIONS


def write_random(path: Path, size: int) -> str:
    """Random bytes in 8 MiB blocks, each made distinct; returns the sha256."""
    h = hashlib.sha256()
    block = bytearray(os.urandom(8 * MiB))
    with open(path, "wb") as f:
        written = 0
        n = 0
        while written < size:
            block[:8] = n.to_bytes(8, "big")
            piece = bytes(block[: min(len(block), size - written)])
            f.write(piece)
            h.update(piece)
            written += len(piece)
            n += 1
        f.flush()
        os.fsync(f.fileno())
    return h.hexdigest()


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Measure:
    def __init__(self, size: int) -> None:
        self.size = size
        self.rates: list[float] = []
        self.cpu: list[float] = []

    async def run(self, fn: Callable[[], Awaitable[object]]) -> None:
        c0, t0 = cpu_seconds(), time.perf_counter()
        await fn()
        wall = time.perf_counter() - t0
        self.rates.append(self.size / wall / 1e6)
        self.cpu.append((cpu_seconds() - c0) / wall)


async def ready_item(database: Database, cache: Cache, sha: str, size: int) -> None:
    item = CatalogItem(sha256=sha, size=size, content_id=sha[:8], title="基准", duration_seconds=60.0,
                       kind=ContentKind.LECTURE)
    await database.write(lambda c: q.apply_catalog_items(c, [item]))
    await cache.mark_ready(sha, size)


async def bench(args: argparse.Namespace, tmp: Path) -> int:
    size, capped = args.size_mib * MiB, args.capped_mib * MiB
    root = tmp / "cache"
    root.mkdir()
    t0 = time.monotonic()
    big = write_random(root / "big", size)
    (root / "big").rename(root / big)
    small = write_random(root / "small", capped)
    (root / "small").rename(root / small)
    print(f"wrote {args.size_mib} MiB and {args.capped_mib} MiB in {time.monotonic() - t0:.1f} s")

    reference, scrub, paced = Measure(size), Measure(size), Measure(capped)
    never = lambda: False  # noqa: E731
    async with Database(tmp / "terminal.sqlite3", MIGRATIONS, synchronous="FULL") as database:
        cache = Cache(database, root, quota=1 << 40, min_free_bytes=0, clean_marker=tmp / "clean")
        await cache.async_open()
        await ready_item(database, cache, big, size)
        await ready_item(database, cache, small, capped)
        for _ in range(args.runs):
            drop_cache(root / big)
            await reference.run(lambda: asyncio.to_thread(sha256_file, root / big))
            drop_cache(root / big)
            await scrub.run(lambda: cache.verify(big, rate=0, stop=never))
        for _ in range(args.runs):
            drop_cache(root / small)
            await paced.run(lambda: cache.verify(small, rate=k.SCRUB_RATE, stop=never))

        # a session begins one second into a capped scrub: how long until the disk is free?
        drop_cache(root / big)
        t1 = time.perf_counter()
        try:
            await cache.verify(big, rate=k.SCRUB_RATE, stop=lambda: time.perf_counter() - t1 > 1.0)
            gave_way = float("nan")
        except VerifyInterrupted:
            gave_way = (time.perf_counter() - t1 - 1.0) * 1000
        await cache.async_close()

    ref = median(reference.rates)
    rows: list[list[object]] = [
        [f"sha256_file, {args.size_mib} MiB (reference)", ref, max(reference.rates), "1.00x",
         f"{median(reference.cpu):.2f}"],
        [f"scrub, no cap, {args.size_mib} MiB", median(scrub.rates), max(scrub.rates),
         f"{median(scrub.rates) / ref:.2f}x", f"{median(scrub.cpu):.2f}"],
        [f"scrub at the cap ({k.SCRUB_RATE / 1e6:.0f} MB/s), {args.capped_mib} MiB", median(paced.rates),
         max(paced.rates), f"{median(paced.rates) / ref:.2f}x", f"{median(paced.cpu):.3f}"],
    ]
    print()
    print(table(["cold file", "MB/s (median)", "best", "vs reference", "CPU share"], rows))
    print()
    print(f"a capped scrub gives way to a session {gave_way:.0f} ms after it begins")
    full = 64 * (1 << 30) / k.SCRUB_RATE
    print(f"at the cap, a full 64 GiB cache is hashed in {full / 3600:.1f} h of idle time; "
          f"the schedule asks for it once every {k.SCRUB_INTERVAL / 86400:.0f} days")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller files, one run (about 15 s)")
    p.add_argument("--size-mib", type=int, help="file hashed without a cap (default 1024, quick 256)")
    p.add_argument("--capped-mib", type=int, help="file hashed at the cap (default 200, quick 60)")
    p.add_argument("--runs", type=int, help="runs of each (default 3, quick 1)")
    p.add_argument("--dir", help="where the files go (default: the system's temporary directory)")
    args = p.parse_args()
    args.size_mib = args.size_mib or (256 if args.quick else 1024)
    args.capped_mib = args.capped_mib or (60 if args.quick else 200)
    args.runs = args.runs or (1 if args.quick else 3)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at the start")
    with temp_dir("yuanjiao-bench-scrub-", args.dir) as tmp:
        return asyncio.run(bench(args, tmp))


if __name__ == "__main__":
    raise SystemExit(main())

"""Piece-verified transfers: what one bad byte costs, and what checking every piece costs.

    python3 bench/bench_pieces.py [--quick] [--size-mib S] [--piece-mib P]

1. One corrupt byte in the middle of a film, on loopback: a small aiohttp blob server
   flips one byte the first time it sends it; the terminal's Downloader fetches the film
   with the catalog's piece hashes (refetches one piece) and without them (the whole-file
   check fails and the film is fetched again, the behaviour before pieces). Prints the
   bytes taken in and the time for each.
2. Hashing: `piece_hashes` (what the server does once per upload) and `PieceCheck.feed`
   (what the terminal does per block: piece hash and whole-file hash) against one plain
   sha256 pass over the same file (the reference), in MB/s.
3. USB parts: writing a film as stick parts (`.tmp`, fsync, rename) and importing it
   piece-checked into a cache `.part`, against `shutil.copyfile` of the same file.

All in one process on this machine, files in a temporary directory under /tmp.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

from _common import REPO, MiB, temp_dir

sys.path.insert(0, str(REPO))

import aiohttp
from aiohttp import web

from server.bundles import _write_part
from shared import bundle as b
from shared.hashing import sha256_file
from shared.pieces import PieceCheck, piece_hashes
from terminal.errors import HashMismatch
from terminal.storage.downloader import Downloader
from terminal.storage.usb import _copy_verified


def make_film(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(4 * MiB, left))
            f.write(block)
            h.update(block)
            left -= len(block)
    return h.hexdigest()


async def corrupt_once(film: Path, sha: str, size: int, piece: int, work: Path) -> None:
    state = {"corrupted": False, "served": 0}
    bad_at = size // 2 + 123

    async def blob(request: web.Request) -> web.StreamResponse:
        rng = request.headers.get("Range")
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        resp = web.StreamResponse(status=206 if rng else 200)
        resp.content_length = size - start
        if rng:
            resp.headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
        await resp.prepare(request)
        f = await asyncio.to_thread(open, film, "rb")
        try:
            await asyncio.to_thread(f.seek, start)
            pos = start
            while block := await asyncio.to_thread(f.read, 256 * 1024):
                if not state["corrupted"] and pos <= bad_at < pos + len(block):
                    block = bytearray(block)
                    block[bad_at - pos] ^= 0xFF
                    block = bytes(block)
                    state["corrupted"] = True
                try:
                    await resp.write(block)
                except ConnectionError:  # the terminal hung up after a bad piece
                    return resp
                state["served"] += len(block)
                pos += len(block)
        finally:
            f.close()
        return resp

    app = web.Application()
    app.router.add_get("/blobs/{sha}", blob)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    hashes = await asyncio.to_thread(piece_hashes, film, piece)
    print(f"1. one corrupt byte in a {size // MiB} MiB film, {piece // MiB} MiB pieces, loopback")
    print(f"   {'':<22}{'bytes taken in':>16}{'x film':>8}{'seconds':>9}")
    try:
        async with aiohttp.ClientSession() as http:
            for label, kwargs in (("with piece hashes", {"piece_size": piece, "pieces": hashes}),
                                  ("whole-file check only", {})):
                state["corrupted"] = False
                part, dest = work / f"{sha}.part", work / sha
                dest.unlink(missing_ok=True)
                t0 = time.perf_counter()
                taken = 0
                downloader = Downloader(http)
                while True:
                    try:
                        got = await downloader.fetch(url, sha, size, part, dest, **kwargs)  # type: ignore[arg-type]
                        taken += got.received
                        break
                    except HashMismatch:
                        taken += size  # the whole film came and was thrown away
                elapsed = time.perf_counter() - t0
                print(f"   {label:<22}{taken:>16,}{taken / size:>8.2f}{elapsed:>9.2f}")
    finally:
        await runner.cleanup()


def hashing(film: Path, size: int, piece: int) -> None:
    def rate(seconds: float) -> float:
        return size / MiB / seconds

    t0 = time.perf_counter()
    sha256_file(film)
    ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    hashes = piece_hashes(film, piece)
    server = time.perf_counter() - t0
    check = PieceCheck(size, piece, hashes)
    t0 = time.perf_counter()
    with open(film, "rb") as f:
        while block := f.read(256 * 1024):
            check.feed(block)
    terminal = time.perf_counter() - t0
    print(f"2. hashing {size // MiB} MiB (MB/s; reference: one sha256 pass, {rate(ref):,.0f} MB/s)")
    print(f"   server piece_hashes         {rate(server):>8,.0f}  {ref / server:.2f}x")
    print(f"   terminal PieceCheck.feed    {rate(terminal):>8,.0f}  {ref / terminal:.2f}x "
          "(piece and whole-file hash)")


def usb(film: Path, sha: str, size: int, piece: int, work: Path) -> None:
    stick, cache = work / "stick", work / "cache"
    cache.mkdir()
    hashes = piece_hashes(film, piece)
    part_size = b.part_size_for(piece, 64 * MiB)
    t0 = time.perf_counter()
    for index in range(-(-size // part_size)):
        _write_part(film, stick, sha, index, part_size, size, piece, hashes)
    write = time.perf_counter() - t0
    check = PieceCheck(size, piece, hashes)
    t0 = time.perf_counter()
    outcome = _copy_verified(stick, sha, check, cache / f"{sha}.part", lambda _n: None)
    read = time.perf_counter() - t0
    assert not outcome and check.whole() == sha
    t0 = time.perf_counter()
    shutil.copyfile(film, work / "plain-copy")
    with open(work / "plain-copy", "rb+") as f:
        os.fsync(f.fileno())
    ref = time.perf_counter() - t0
    print(f"3. USB parts, {size // MiB} MiB to a directory on this disk (reference: copy + fsync, "
          f"{size / MiB / ref:,.0f} MB/s)")
    print(f"   bundle write (parts, fsync)  {size / MiB / write:>7,.0f} MB/s  {ref / write:.2f}x")
    print(f"   terminal import (checked)    {size / MiB / read:>7,.0f} MB/s  {ref / read:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--size-mib", type=int, default=None)
    p.add_argument("--piece-mib", type=int, default=4)
    args = p.parse_args()
    size = (args.size_mib or (64 if args.quick else 512)) * MiB
    piece = args.piece_mib * MiB
    with temp_dir("yj-bench-pieces-", "/tmp") as work:
        film = work / "film.bin"
        sha = make_film(film, size)
        asyncio.run(corrupt_once(film, sha, size, piece, work))
        hashing(film, size, piece)
        usb(film, sha, size, piece, work)


if __name__ == "__main__":
    main()

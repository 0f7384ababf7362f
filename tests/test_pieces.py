"""Piece-verified downloads: one bad piece costs one piece, never the film.

* The server hashes every piece of a content once, when its upload completes, and the
  signed catalog names them beside the whole file's sha256; contents stored before
  piece hashes existed get theirs from a backfill when the server starts.
* A proxy in front of the real server flips one byte of one piece, once: the terminal
  daemon still makes the film ready, asking again only from that piece's first byte,
  and the bytes it took in are the film plus at most that piece (and one block in
  flight).
* A download resumed in the middle of a piece re-checks that piece: a kept half-piece
  with a bad byte is caught when the piece completes and only that piece is fetched
  again; an intact one resumes where it stopped; a bad whole piece among the kept bytes
  is cut off before the resume.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import aiohttp
import msgspec
import pytest
from sqlalchemy import Connection, text

from server.appkeys import BACKFILL, DB
from shared.pieces import BadPiece, PieceCheck, piece_hashes
from shared.protocol import Catalog, SignedCatalog
from terminal.daemon import Terminal
from terminal.storage.downloader import Downloader
from tests.blob_proxy import blob_proxy
from tests.conftest import make_clip, serve, server_config, terminal_token
from tests.terminal_helpers import (
    TERMINAL_ID,
    assign,
    enroll,
    item_state,
    terminal_config,
    upload,
)

pytestmark = pytest.mark.asyncio
P = 64 * 1024  # piece size for these tests: a small film still has a dozen pieces
CHUNK = 16 * 1024


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_clip(tmp_path_factory.mktemp("film") / "film.mp4", 4, "480x360", 550, "testsrc2")
    assert path.stat().st_size > 6 * P
    return path


async def _catalog(http: aiohttp.ClientSession) -> Catalog:
    async with http.get(f"/api/v1/terminals/{TERMINAL_ID}/catalog") as r:
        assert r.status == 200, await r.text()
        envelope = msgspec.json.decode(await r.read(), type=SignedCatalog)
    return msgspec.json.decode(bytes(envelope.catalog), type=Catalog)


async def test_piece_check_catches_the_bad_piece_and_rolls_the_whole_hash_back() -> None:
    data = bytes(range(256)) * 1000  # 256,000 bytes: 4 pieces of 64,000
    pieces = [hashlib.sha256(data[i:i + 64_000]).hexdigest() for i in range(0, len(data), 64_000)]
    check = PieceCheck(len(data), 64_000, pieces)
    check.feed(data[:100_000])
    bad = bytearray(data[100_000:128_000])
    bad[5] ^= 1
    with pytest.raises(BadPiece) as caught:
        check.feed(bytes(bad))
    assert (caught.value.index, caught.value.start, check.offset) == (1, 64_000, 64_000)
    check.feed(data[64_000:])
    assert check.whole() == hashlib.sha256(data).hexdigest()


async def test_catalog_carries_piece_hashes_and_old_contents_are_backfilled(
    tmp_path: Path, film: Path,
) -> None:
    config = server_config(tmp_path, piece_size=P)
    async with serve(config, seed=True) as (running, http):
        content_id, sha = await upload(http, film, "专题片：山村")
        await assign(http, content_id)
        token = await terminal_token(http, TERMINAL_ID)
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(running.url, headers=headers) as as_terminal:
            item = (await _catalog(as_terminal)).items[0]
        expected = await asyncio.to_thread(piece_hashes, film, P)
        assert item.sha256 == sha and item.piece_size == P and item.pieces == expected
        # as if stored before piece hashes existed
        await running.app[DB].write(lambda c: c.execute(text("DELETE FROM content_pieces")))

    async with serve(config) as (running, http):
        await running.app[BACKFILL]
        async with aiohttp.ClientSession(running.url, headers=headers) as as_terminal:
            item = (await _catalog(as_terminal)).items[0]
        assert item.piece_size == P and item.pieces == expected

        def count(c: Connection) -> int:
            return int(c.execute(text("SELECT COUNT(*) FROM content_pieces")).scalar_one())

        assert await running.app[DB].read(count) == 1


async def test_daemon_refetches_only_the_corrupt_piece(tmp_path: Path, film: Path) -> None:
    size = film.stat().st_size
    bad_at = 2 * P + 1234
    async with serve(server_config(tmp_path, piece_size=P), seed=True) as (running, http):
        content_id, sha = await upload(http, film, "专题片：山村")
        await assign(http, content_id)
        async with blob_proxy(running.url, corrupt_at=bad_at) as proxy:
            tconfig = await enroll(http, terminal_config(tmp_path, proxy.url), proxy.url)
            async with Terminal(tconfig) as terminal:
                await terminal.wait_until(item_state(terminal, sha), timeout=60)
            assert proxy.corrupted == 1
            assert proxy.ranges == [None, f"bytes={2 * P}-"]  # again from the bad piece only
    cached = await asyncio.to_thread((tconfig.cache_dir / sha).read_bytes)
    assert len(cached) == size and hashlib.sha256(cached).hexdigest() == sha


async def test_bytes_taken_in_are_the_film_plus_one_piece(tmp_path: Path, film: Path) -> None:
    size = film.stat().st_size
    async with serve(server_config(tmp_path, piece_size=P), seed=True) as (running, http):
        _, sha = await upload(http, film, "专题片：山村")
        pieces = await asyncio.to_thread(piece_hashes, film, P)
        async with blob_proxy(running.url, corrupt_at=3 * P + 7) as proxy:
            part, dest = tmp_path / f"{sha}.part", tmp_path / sha
            fetched = await Downloader(http, chunk=CHUNK).fetch(
                proxy.url, sha, size, part, dest, dict(http.headers), piece_size=P, pieces=pieces)
        assert fetched.pieces_refetched == 1
        assert proxy.ranges == [None, f"bytes={3 * P}-"]
        assert size < fetched.received <= size + P + CHUNK
        assert await asyncio.to_thread(dest.read_bytes) == await asyncio.to_thread(film.read_bytes)


@pytest.mark.parametrize("case", ["intact", "bad-in-partial-piece", "bad-in-kept-piece"])
async def test_resume_in_the_middle_of_a_piece(tmp_path: Path, film: Path, case: str) -> None:
    body = await asyncio.to_thread(film.read_bytes)
    size = len(body)
    kept = bytearray(body[: 2 * P + P // 2])  # two whole pieces and half of the third
    if case == "bad-in-partial-piece":
        kept[2 * P + 10] ^= 0xFF
    elif case == "bad-in-kept-piece":
        kept[P + 10] ^= 0xFF
    async with serve(server_config(tmp_path, piece_size=P), seed=True) as (running, http):
        _, sha = await upload(http, film, "专题片：山村")
        pieces = await asyncio.to_thread(piece_hashes, film, P)
        part, dest = tmp_path / f"{sha}.part", tmp_path / sha
        await asyncio.to_thread(part.write_bytes, bytes(kept))
        async with blob_proxy(running.url) as proxy:
            fetched = await Downloader(http, chunk=CHUNK).fetch(
                proxy.url, sha, size, part, dest, dict(http.headers), piece_size=P, pieces=pieces)
    assert await asyncio.to_thread(dest.read_bytes) == body
    if case == "intact":
        assert proxy.ranges == [f"bytes={len(kept)}-"]
        assert fetched.received == size - len(kept) and fetched.pieces_refetched == 0
    elif case == "bad-in-partial-piece":
        # the kept half-piece is checked once the piece completes; only it comes again
        assert proxy.ranges == [f"bytes={len(kept)}-", f"bytes={2 * P}-"]
        assert fetched.pieces_refetched == 1
        assert fetched.received <= (3 * P - len(kept)) + CHUNK + (size - 2 * P)
    else:
        assert proxy.ranges == [f"bytes={P}-"]  # cut at the bad kept piece before asking
        assert fetched.resumed_from == P and fetched.received == size - P

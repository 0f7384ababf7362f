"""Terminals share verified items with each other, on loopback with the real server and
real terminal daemons.

* A terminal that holds a film verified serves it to another terminal of its township:
  the server names it as the first source, the second terminal takes every byte from it
  and none from the server, and its heartbeat says so; the console's per-film figures
  show one film's bytes sent by the server and one taken in from a peer.
* A peer whose cached file has a changed byte is caught at the first bad piece, never
  asked again, reported in the heartbeat; the film still arrives, the rest from the
  server, starting at that piece.
* A terminal playing a session serves nobody: the other falls back to the server.
* The peer endpoint answers only a request that carries a credential signed by the
  county server and is signed by that credential's terminal key; ranges are exact.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from server.appkeys import DB
from shared import peers as sp
from shared.protocol import Heartbeat
from shared.timeutil import utcnow
from terminal.config import TerminalConfig
from terminal.daemon import Terminal
from terminal.playback.sessions import SessionSpec
from terminal.storage.usb import own_key
from tests.conftest import make_clip, serve, server_config
from tests.terminal_helpers import enroll, eventually, item_state, terminal_config, upload

pytestmark = pytest.mark.asyncio
P = 64 * 1024
TOWNSHIP = "140121100"
TA, TB, TC = "T140121100001", "T140121100002", "T140121100003"


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_clip(tmp_path_factory.mktemp("film") / "film.mp4", 4, "480x360", 550, "testsrc2")
    assert path.stat().st_size > 6 * P
    return path


def _tconfig(tmp_path: Path, name: str, terminal_id: str, url: str, **kw: Any) -> TerminalConfig:
    return terminal_config(tmp_path / name, url, terminal_id=terminal_id, heartbeat_interval=0.3,
                           sync_interval=0.5, **kw)


async def _county(http: aiohttp.ClientSession, film: Path) -> str:
    content_id, sha = await upload(http, film, "专题片：山村")
    async with http.post("/api/v1/admin/assignments",
                         json={"content_id": content_id, "scope": "unit", "target": TOWNSHIP}) as r:
        assert r.status == 201, await r.text()
    return sha


async def _holder(http: aiohttp.ClientSession, tmp_path: Path, url: str, sha: str,
                  terminal_id: str = TA, **kw: Any) -> Terminal:
    """A terminal (A unless told), holding the film verified, known to the server as
    holding it."""
    config = await enroll(http, _tconfig(tmp_path, terminal_id, terminal_id, url, **kw), url)
    a = Terminal(config)
    await a.async_start()
    await a.wait_until(item_state(a, sha), timeout=60)

    async def reported() -> bool:
        async with http.get("/api/v1/admin/fleet") as r:
            fleet = {t["id"]: t for t in (await r.json())["terminals"]}
        return bool(fleet[terminal_id]["ready_items"] == 1)

    await eventually(reported, timeout=20)
    return a


async def _stored_heartbeat(running: Any, terminal_id: str) -> Heartbeat:
    raw = await running.app[DB].read(lambda c: c.execute(
        text("SELECT heartbeat FROM terminals WHERE id = :id"), {"id": terminal_id}).scalar_one())
    return msgspec.json.decode(raw, type=Heartbeat)


async def test_a_terminal_takes_the_film_from_its_peer(tmp_path: Path, film: Path) -> None:
    size = film.stat().st_size
    async with serve(server_config(tmp_path, piece_size=P, heartbeat_interval=0.3), seed=True) as (
            running, http):
        sha = await _county(http, film)
        a = await _holder(http, tmp_path, running.url, sha)
        try:
            b_config = await enroll(http, _tconfig(tmp_path, "b", TB, running.url), running.url)
            async with Terminal(b_config) as b:
                await b.wait_until(item_state(b, sha), timeout=60)
                assert b.syncer is not None
                assert b.syncer.bytes_from_peers == size and b.syncer.bytes_from_server == 0

                async def reported() -> bool:
                    hb = await _stored_heartbeat(running, TB)
                    return hb.bytes_from_peers == size
                await eventually(reported, timeout=20)

                async def per_film() -> bool:  # what the console's library shows for the film
                    async with http.get("/api/v1/admin/contents/reach") as r:
                        reach = {x["content_id"]: x for x in await r.json()}
                    film_reach = next(iter(reach.values()))
                    return bool(film_reach["bytes_from_peers"] == size
                                and film_reach["bytes_from_server"] == size)  # A's copy only
                await eventually(per_film, timeout=20)
            assert a.peer_service is not None and a.peer_service.bytes_served == size
        finally:
            await a.async_close()
    got = await asyncio.to_thread((b_config.cache_dir / sha).read_bytes)
    assert got == await asyncio.to_thread(film.read_bytes)


async def test_a_peer_sending_a_bad_piece_is_dropped_and_the_server_finishes(
    tmp_path: Path, film: Path,
) -> None:
    size = film.stat().st_size
    async with serve(server_config(tmp_path, piece_size=P, heartbeat_interval=0.3), seed=True) as (
            running, http):
        sha = await _county(http, film)
        a = await _holder(http, tmp_path, running.url, sha)
        try:
            cached = a.config.cache_dir / sha
            st = cached.stat()
            data = bytearray(cached.read_bytes())
            data[3 * P + 99] ^= 0xFF  # a disk going bad under terminal A, unnoticed by it
            cached.write_bytes(bytes(data))
            os.utime(cached, ns=(st.st_atime_ns, st.st_mtime_ns))
            b_config = await enroll(http, _tconfig(tmp_path, "b", TB, running.url), running.url)
            async with Terminal(b_config) as b:
                await b.wait_until(item_state(b, sha), timeout=60)
                assert b.syncer is not None and b.syncer.peers is not None
                assert b.syncer.peers.bad_peers == {TA}
                assert 3 * P <= b.syncer.bytes_from_peers <= size
                assert b.syncer.bytes_from_server == size - 3 * P  # from the bad piece on

                async def reported() -> bool:
                    return (await _stored_heartbeat(running, TB)).bad_peers == [TA]
                await eventually(reported, timeout=20)
        finally:
            await a.async_close()
    got = await asyncio.to_thread((b_config.cache_dir / sha).read_bytes)
    assert got == await asyncio.to_thread(film.read_bytes)


async def test_a_terminal_playing_a_session_serves_nobody(tmp_path: Path, film: Path) -> None:
    size = film.stat().st_size
    async with serve(server_config(tmp_path, piece_size=P, heartbeat_interval=0.3), seed=True) as (
            running, http):
        sha = await _county(http, film)
        a = await _holder(http, tmp_path, running.url, sha, playback_rate=0.5)
        try:
            session = await a.start_session(SessionSpec("冬训", [sha]), [])
            await a.wait_until(lambda: a.session_running, timeout=10)
            b_config = await enroll(http, _tconfig(tmp_path, "b", TB, running.url), running.url)
            async with Terminal(b_config) as b:
                await b.wait_until(item_state(b, sha), timeout=60)
                assert b.syncer is not None
                assert a.session_running  # still playing while B finished
                assert b.syncer.bytes_from_server == size and b.syncer.bytes_from_peers == 0
            assert a.peer_service is not None and a.peer_service.bytes_served == 0
            session.cancel()
        finally:
            await a.async_close()


async def test_only_credentialed_county_terminals_are_served(tmp_path: Path, film: Path) -> None:
    body = await asyncio.to_thread(film.read_bytes)
    async with serve(server_config(tmp_path, piece_size=P, heartbeat_interval=0.3), seed=True) as (
            running, http):
        sha = await _county(http, film)
        a = await _holder(http, tmp_path, running.url, sha)
        try:
            b_config = await enroll(http, _tconfig(tmp_path, "b", TB, running.url), running.url)
            b = Terminal(b_config)
            await b.async_start(background=False)
            try:
                key = await own_key(b.db)
                assert key is not None and b.link is not None
                client = await b.link.get()
                credential = await client.peer_credential()
            finally:
                await b.async_close()
            assert a.status_server is not None
            url = f"http://127.0.0.1:{a.status_server.port}/peer/blobs/{sha}"
            path = f"/peer/blobs/{sha}"
            good = sp.proof_headers(credential, key, "GET", path, utcnow())
            rogue_key = Ed25519PrivateKey.generate()
            raw = bytes(credential.credential)
            forged = sp.SignedCredential(credential=msgspec.Raw(raw), signature=base64.b64encode(
                rogue_key.sign(sp.CREDENTIAL_CONTEXT + raw)).decode())
            cases: dict[str, dict[str, str]] = {
                "none": {},
                "forged credential": sp.proof_headers(forged, key, "GET", path, utcnow()),
                "stolen credential": sp.proof_headers(credential, rogue_key, "GET", path, utcnow()),
                "other path": sp.proof_headers(credential, key, "GET", "/peer/blobs/" + "0" * 64,
                                               utcnow()),
            }
            async with aiohttp.ClientSession() as plain:
                for name, headers in cases.items():
                    async with plain.get(url, headers=headers) as r:
                        assert r.status == 403, name
                async with plain.get(url, headers={**good, "Range": f"bytes={P}-{2 * P - 1}"}) as r:
                    assert r.status == 206
                    assert r.headers["Content-Range"] == f"bytes {P}-{2 * P - 1}/{len(body)}"
                    assert await r.read() == body[P:2 * P]
                async with plain.get(url, headers=good) as r:
                    assert r.status == 200 and await r.read() == body
        finally:
            await a.async_close()


async def test_a_peer_cut_off_mid_transfer_costs_only_time(tmp_path: Path, film: Path) -> None:
    """Terminal A serves slowly and starts a session while B is fetching from it, which
    cuts the transfer as a dead peer would: B keeps the verified pieces it got and takes
    only the rest from the server."""
    size = film.stat().st_size
    async with serve(server_config(tmp_path, piece_size=P, heartbeat_interval=0.3), seed=True) as (
            running, http):
        sha = await _county(http, film)
        a = await _holder(http, tmp_path, running.url, sha, peer_upload_limit=size // 4,
                          playback_rate=0.5)
        try:
            b_config = await enroll(http, _tconfig(tmp_path, "b", TB, running.url), running.url)
            async with Terminal(b_config) as b:
                assert b.syncer is not None

                async def underway() -> bool:
                    return b.syncer is not None and b.syncer.progress.get(sha, (0, 0))[0] >= 2 * P
                await eventually(underway, timeout=30, every=0.02)
                session = await a.start_session(SessionSpec("冬训", [sha]), [])  # cut off
                await b.wait_until(item_state(b, sha), timeout=60)
                from_peer, from_server = b.syncer.bytes_from_peers, b.syncer.bytes_from_server
                assert 2 * P <= from_peer < size
                assert from_server <= size - (from_peer // P) * P  # only what was not verified
                session.cancel()
        finally:
            await a.async_close()
    got = await asyncio.to_thread((b_config.cache_dir / sha).read_bytes)
    assert got == await asyncio.to_thread(film.read_bytes)


async def _corrupt(terminal: Terminal, sha: str, offsets: list[int]) -> None:
    """Change bytes of a cached file without the terminal noticing (size and mtime kept)."""
    cached = terminal.config.cache_dir / sha
    st = cached.stat()
    data = bytearray(await asyncio.to_thread(cached.read_bytes))
    for at in offsets:
        data[at] ^= 0xFF
    await asyncio.to_thread(cached.write_bytes, bytes(data))
    os.utime(cached, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("bad_peer", [False, True])
async def test_pieces_from_two_peers_at_once(tmp_path: Path, film: Path, bad_peer: bool) -> None:
    """Two terminals hold the film; the third takes pieces from both at once and nothing
    from the server. When one of them serves bad bytes (a bad piece in every run of
    pieces it could be asked for), it is dropped at its first bad piece and the other
    gives the rest."""
    size = film.stat().st_size
    async with serve(server_config(tmp_path, piece_size=P, heartbeat_interval=0.3), seed=True) as (
            running, http):
        sha = await _county(http, film)
        a = await _holder(http, tmp_path, running.url, sha, peer_upload_limit=size)
        c = await _holder(http, tmp_path, running.url, sha, terminal_id=TC, peer_upload_limit=size)
        try:
            if bad_peer:
                await _corrupt(c, sha, list(range(P + 7, size, 2 * P)))
            b_config = await enroll(http, _tconfig(tmp_path, "b", TB, running.url), running.url)
            async with Terminal(b_config) as b:
                await b.wait_until(item_state(b, sha), timeout=60)
                assert b.syncer is not None and b.syncer.peers is not None
                assert b.syncer.bytes_from_server == 0 and b.syncer.bytes_from_peers >= size
                assert b.syncer.peers.bad_peers == ({TC} if bad_peer else set())
            assert a.peer_service is not None and c.peer_service is not None
            assert a.peer_service.bytes_served > 0 and c.peer_service.bytes_served > 0
        finally:
            await a.async_close()
            await c.async_close()
    got = await asyncio.to_thread((b_config.cache_dir / sha).read_bytes)
    assert got == await asyncio.to_thread(film.read_bytes)

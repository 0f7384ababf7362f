"""The terminal on a LAN where anyone can advertise a server.

A rogue advertising `_yuanjiao._tcp` (even one copying the county server's public key
and fingerprint) changes nothing on the terminal and receives no token, no heartbeat and
no attendance, because it cannot sign the terminal's challenge; a server with another key
is refused outright; when the real server returns, the records reach it. Over https the terminal pins the
certificate enrollment named: the same address with another certificate is refused."""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import Connection, text
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from server.appkeys import DB
from server.runner import RunningServer
from shared import service
from shared.sqlite import Database
from terminal.daemon import Terminal
from terminal.network.enroll import enroll as trade_code
from terminal.playback.sessions import SessionSpec
from terminal.storage.migrations import MIGRATIONS
from tests.conftest import serve, server_config
from tests.terminal_helpers import (
    TERMINAL_ID,
    assign,
    backlog_empty,
    enroll,
    enrollment_code,
    item_state,
    terminal_config,
    upload,
)
from tests.test_tls import make_certificate, pin_of

pytestmark = pytest.mark.asyncio


async def _seen(running: RunningServer) -> tuple[int, str | None]:
    """(attendance records, last heartbeat) the server holds for our terminal."""
    def read(c: Connection) -> tuple[int, str | None]:
        count = c.execute(text("SELECT COUNT(*) FROM attendance WHERE terminal_id = :id"),
                          {"id": TERMINAL_ID}).scalar_one()
        seen = c.execute(text("SELECT last_seen FROM terminals WHERE id = :id"),
                         {"id": TERMINAL_ID}).first()
        return int(count), seen[0] if seen else None
    return await running.app[DB].read(read)


class LyingServer:
    """A rogue on the LAN that copies the county server's public key and fingerprint into
    its mDNS record and its answers, and acknowledges anything it is sent."""

    def __init__(self, public_key: str, fingerprint: str) -> None:
        self.requests: list[tuple[str, str, str]] = []  # method, path, Authorization
        self.info = {"server_id": "rogue", "name": "县远教内容服务器", "api_version": "1",
                     "software_version": "0.1.0", "key_fingerprint": fingerprint,
                     "public_key": public_key}
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.answer)
        self.runner = web.AppRunner(self.app)
        self.port = 0

    async def answer(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path, request.headers.get("Authorization", "")))
        if request.path == "/api/v1/server":
            forged = base64.b64encode(os.urandom(64)).decode()  # it cannot sign: it guesses
            return web.json_response({**self.info, "challenge_signature": forged})
        if request.path.endswith("/attendance"):
            body = await request.json()
            return web.json_response({"accepted": [r["record_id"] for r in body["records"]]})
        return web.json_response({"server_time": "2026-01-01T00:00:00Z", "catalog_version": 1,
                                  "heartbeat_interval_seconds": 60})

    async def __aenter__(self) -> LyingServer:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self.runner.addresses[0][1])
        self.azc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
        self.service = AsyncServiceInfo(
            service.SERVER_SERVICE_TYPE, f"县远教内容服务器 rogue.{service.SERVER_SERVICE_TYPE}",
            addresses=[socket.inet_aton("127.0.0.1")], port=self.port,
            properties={service.TXT_API: "1", service.TXT_SERVER_ID: "rogue",
                        service.TXT_FINGERPRINT: self.info["key_fingerprint"],
                        service.TXT_PATH: service.API_PREFIX})
        await (await self.azc.async_register_service(self.service))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await (await self.azc.async_unregister_service(self.service))
        await self.azc.async_close()
        await self.runner.cleanup()


async def test_rogue_server_gets_nothing(tmp_path: Path, clip: Path) -> None:
    county = server_config(tmp_path / "county", zeroconf=True, zeroconf_interfaces=("127.0.0.1",))
    tconfig = terminal_config(tmp_path, "", zeroconf=True)
    async with serve(county, seed=True) as (real, http):
        content_id, sha = await upload(http, clip, "党课")
        await assign(http, content_id)
        await enroll(http, tconfig, real.url, keep_address=False)
        async with http.get("/api/v1/server") as r:
            info = await r.json()
        async with Terminal(tconfig) as terminal:
            await terminal.wait_until(item_state(terminal, sha), timeout=60)
            version = (await terminal.snapshot()).catalog_version
            await real.async_close()  # the county server goes away...

            async with LyingServer(info["public_key"], info["key_fingerprint"]) as rogue:
                done = await terminal.run_session(SessionSpec("第一课", [sha]), ["1"])
                assert done.watched[sha] > 0  # the cache plays with no trusted server
                terminal.wake_outbox()

                async def refused() -> bool:
                    snap = await terminal.snapshot()
                    return "cannot sign" in snap.condition and f":{rogue.port}" in snap.condition
                await terminal.wait_until(refused, timeout=30)
                snap = await terminal.snapshot()
                assert snap.server_fingerprint == info["key_fingerprint"]
                assert snap.catalog_version == version
                assert [i.state for i in snap.items if i.sha256 == sha] == ["ready"]
                assert snap.outbox_backlog == 1  # nothing was handed to the rogue
                assert rogue.requests, "the rogue was never even asked"
                assert {path for _, path, _ in rogue.requests} == {"/api/v1/server"}
                assert all(auth == "" for _, _, auth in rogue.requests)  # no token leaked

    async with serve(county) as (back, _http), Terminal(tconfig) as terminal:
        terminal.wake_outbox()
        await terminal.wait_until(backlog_empty(terminal), timeout=60)
        count, last_seen = await _seen(back)
        assert count == 1 and last_seen is not None


async def test_server_with_another_key_is_never_trusted(tmp_path: Path, clip: Path) -> None:
    tconfig = terminal_config(tmp_path, "", zeroconf=False)
    async with serve(server_config(tmp_path / "county"), seed=True) as (real, http):
        await enroll(http, tconfig, real.url)
    other = server_config(tmp_path / "other")
    async with serve(other, seed=True) as (impostor, _http), \
            Terminal(tconfig.replace(server_url=impostor.url)) as terminal:
        async def refused() -> bool:
            return "not the pinned" in (await terminal.snapshot()).condition
        await terminal.wait_until(refused, timeout=30)
        assert await _seen(impostor) == (0, None)


async def test_https_certificate_is_pinned(tmp_path: Path, clip: Path) -> None:
    first_cert = make_certificate(tmp_path / "first")
    other_cert = make_certificate(tmp_path / "other")
    config = server_config(tmp_path, tls_certificate=first_cert[0], tls_key=first_cert[1])
    async with serve(config, seed=True) as (running, http):
        content_id, sha = await upload(http, clip, "党课")
        await assign(http, content_id)
        port = running.port
        tconfig = terminal_config(tmp_path, running.url)
        # enroll over https: the self-signed certificate is vouched for by its pin
        code = await enrollment_code(http, TERMINAL_ID)
        async with Database(tconfig.db_path, MIGRATIONS) as database, aiohttp.ClientSession() as plain:
            answer = await trade_code(plain, database, running.url, code, pin_of(first_cert[0]))
        assert answer.tls_certificate_sha256 == pin_of(first_cert[0])
        async with Terminal(tconfig) as terminal:
            await terminal.wait_until(item_state(terminal, sha), timeout=60)
    # The same address and signing key, but another certificate: refused.
    swapped = config.replace(port=port, tls_certificate=other_cert[0], tls_key=other_cert[1])
    async with serve(swapped) as (_running, _http), Terminal(tconfig) as terminal:
        async def unreachable() -> bool:
            return "unreachable" in (await terminal.snapshot()).condition
        await terminal.wait_until(unreachable, timeout=30)


async def test_revoked_terminal_keeps_playing_and_keeps_its_outbox(tmp_path: Path, clip: Path) -> None:
    async with serve(server_config(tmp_path / "county"), seed=True) as (running, http):
        content_id, sha = await upload(http, clip, "党课")
        await assign(http, content_id)
        tconfig = await enroll(http, terminal_config(tmp_path, running.url, sync_interval=0.5),
                               running.url)
        async with Terminal(tconfig) as terminal:
            await terminal.wait_until(item_state(terminal, sha), timeout=60)
            async with http.post(f"/api/v1/admin/terminals/{TERMINAL_ID}/revoke") as r:
                assert r.status == 204
            done = await terminal.run_session(SessionSpec("第二课", [sha]), ["1"])
            assert done.watched[sha] > 0
            terminal.wake_outbox()

            async def told() -> bool:
                return "revoked" in (await terminal.snapshot()).condition
            await terminal.wait_until(told, timeout=30)
            snap = await terminal.snapshot()
            assert snap.outbox_backlog == 1
            assert [i.state for i in snap.items if i.sha256 == sha] == ["ready"]
        assert (await _seen(running))[0] == 0  # nothing was taken from it after the revocation

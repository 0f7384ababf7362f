"""mDNS on loopback only: the server registers `_yuanjiao._tcp.local.` with its API
version, server id and key fingerprint; a browser resolves it to the server's port;
it lists terminals advertising `_yuanjiao-terminal._tcp.local.`; and it unregisters on
shutdown."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest
from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from server.appkeys import SERVER_ID
from server.runner import RunningServer
from shared import service
from tests.conftest import seed_county, serve, server_config

pytestmark = pytest.mark.asyncio
LOOPBACK = ["127.0.0.1"]


class Watcher:
    def __init__(self) -> None:
        self.added: asyncio.Queue[str] = asyncio.Queue()
        self.removed: asyncio.Queue[str] = asyncio.Queue()

    def __call__(self, zeroconf: Zeroconf, service_type: str, name: str,
                 state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Added:
            self.added.put_nowait(name)
        elif state_change is ServiceStateChange.Removed:
            self.removed.put_nowait(name)


async def test_browse_resolves_server_and_sees_it_leave(tmp_path: Path) -> None:
    config = server_config(tmp_path, zeroconf=True, zeroconf_interfaces=("127.0.0.1",))
    async with AsyncZeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only) as azc:
        watcher = Watcher()
        browser = AsyncServiceBrowser(azc.zeroconf, [service.SERVER_SERVICE_TYPE], handlers=[watcher])
        try:
            running = RunningServer(config)
            await running.async_start()
            try:
                # Other servers may come and go on loopback: wait for this one's name.
                server_id = running.app[SERVER_ID]
                name = ""
                while server_id[:8] not in name:
                    name = await asyncio.wait_for(watcher.added.get(), 20)
                info = AsyncServiceInfo(service.SERVER_SERVICE_TYPE, name)
                assert await info.async_request(azc.zeroconf, 10_000)
                assert info.port == running.port
                assert "127.0.0.1" in info.parsed_addresses()
                txt = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
                async with aiohttp.ClientSession() as http, \
                        http.get(f"http://127.0.0.1:{info.port}/api/v1/server") as r:
                    me = await r.json()
                assert txt[service.TXT_API] == service.API_VERSION
                assert txt[service.TXT_SERVER_ID] == me["server_id"]
                assert txt[service.TXT_FINGERPRINT] == me["key_fingerprint"]
                assert txt[service.TXT_PATH] == "/api/v1"
            finally:
                await running.async_close()
            while await asyncio.wait_for(watcher.removed.get(), 20) != name:
                pass
        finally:
            await browser.async_cancel()


async def test_server_lists_terminals_it_hears(tmp_path: Path) -> None:
    config = server_config(tmp_path, zeroconf=True, zeroconf_interfaces=("127.0.0.1",))
    async with serve(config) as (running, http):
        await seed_county(running)
        async with AsyncZeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only) as azc:
            info = AsyncServiceInfo(
                service.TERMINAL_SERVICE_TYPE, f"村终端 T140121100001.{service.TERMINAL_SERVICE_TYPE}",
                addresses=[socket.inet_aton("127.0.0.1")], port=9999,
                properties={service.TXT_TERMINAL_ID: "T140121100001",
                            service.TXT_VILLAGE: "140121100001", service.TXT_VERSION: "0.1.0"},
            )
            # The fixed type name is longer than RFC 6335 allows (15), so not strict.
            await azc.async_register_service(info, strict=False)
            discovery = running.discovery
            assert discovery is not None
            for _ in range(200):
                if "T140121100001" in discovery.discovered_terminal_ids():
                    break
                await asyncio.sleep(0.05)
            async with http.get("/api/v1/admin/fleet") as r:
                terminals = {t["id"]: t for t in (await r.json())["terminals"]}
            assert terminals["T140121100001"]["discovered"] is True
            assert terminals["T140121100002"]["discovered"] is False
            await azc.async_unregister_service(info)

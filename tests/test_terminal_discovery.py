"""Discovery, on loopback only.

* A terminal with no configured URL finds the server over mDNS; when the server comes
  back on another port (same key), the terminal follows it there.
* Without mDNS and without a configured URL, the stored last good address is used.
* The terminal advertises `_yuanjiao-terminal._tcp.local.` with its id, village and
  version; a technician's browser resolves it and reads the status endpoint there.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from shared import service
from terminal import constants as k
from terminal.daemon import Terminal
from tests.conftest import serve, server_config
from tests.terminal_helpers import TERMINAL_ID, VILLAGE, enroll, terminal_config

pytestmark = pytest.mark.asyncio


def _on(terminal: Terminal, url: str) -> object:
    async def check() -> bool:
        return (await terminal.snapshot()).server_url == url
    return check


async def test_follows_the_server_to_a_new_address(tmp_path: Path) -> None:
    config = server_config(tmp_path, zeroconf=True, zeroconf_interfaces=("127.0.0.1",),
                           heartbeat_interval=0.3)
    tconfig = terminal_config(tmp_path, "", zeroconf=True)
    async with serve(config, seed=True) as (county, http):
        await enroll(http, tconfig, county.url, keep_address=False)  # then found by mDNS alone
    async with Terminal(tconfig) as terminal:
        async with serve(config) as (first, _http):
            await terminal.wait_until(_on(terminal, first.url), timeout=30)
            old_url = first.url
        async with serve(config, seed=False) as (second, _http):
            assert second.url != old_url
            await terminal.wait_until(_on(terminal, second.url), timeout=30)
            new_url = second.url
            fingerprint = (await terminal.snapshot()).server_fingerprint
    # no mDNS and nothing configured: the stored last good address is enough
    same_port = config.replace(zeroconf=False, port=int(new_url.rsplit(":", 1)[1]))
    async with serve(same_port) as (third, _http), Terminal(tconfig.replace(zeroconf=False)) as terminal:
        await terminal.wait_until(_on(terminal, third.url), timeout=30)
        assert (await terminal.snapshot()).server_fingerprint == fingerprint


async def test_terminal_advertises_itself(tmp_path: Path) -> None:
    found: asyncio.Queue[str] = asyncio.Queue()

    def seen(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Added:
            found.put_nowait(name)

    async with AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only) as azc:
        browser = AsyncServiceBrowser(azc.zeroconf, [service.TERMINAL_SERVICE_TYPE], handlers=[seen])
        try:
            async with Terminal(terminal_config(tmp_path, "", zeroconf=True)) as terminal:
                # Other terminals may be advertising on loopback too: wait for this one.
                assert terminal.status_server is not None
                while True:
                    name = await asyncio.wait_for(found.get(), 20)
                    info = AsyncServiceInfo(service.TERMINAL_SERVICE_TYPE, name)
                    assert await info.async_request(azc.zeroconf, 3000)
                    if info.port == terminal.status_server.port:
                        break
                txt = {key.decode(): (v or b"").decode() for key, v in info.properties.items()}
                assert txt == {service.TXT_TERMINAL_ID: TERMINAL_ID, service.TXT_VILLAGE: VILLAGE,
                               service.TXT_VERSION: k.SOFTWARE_VERSION}
                assert terminal.status_server is not None and info.port == terminal.status_server.port
                async with aiohttp.ClientSession() as http, \
                        http.get(f"http://127.0.0.1:{info.port}/status") as r:
                    status = await r.json()
                    assert status["terminal_id"] == TERMINAL_ID
                async with aiohttp.ClientSession() as http, \
                        http.post(f"http://127.0.0.1:{info.port}/control/window", json={"hours": 1}) as r:
                    assert r.status == 200  # controls answer on the box itself
        finally:
            await browser.async_cancel()

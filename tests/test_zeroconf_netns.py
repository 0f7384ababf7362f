"""Inside a network namespace the test makes (never on the machine's real interfaces):
the server, advertising on every interface, announces itself again when an address is
added, and a browser on that network sees the new address."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.asyncio

BROWSE = r"""
import asyncio, json, sys
from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf, AsyncServiceBrowser
from shared.service import SERVER_SERVICE_TYPE

async def main():
    azc = AsyncZeroconf(interfaces=InterfaceChoice.All, ip_version=IPVersion.V4Only)
    names = set()
    browser = AsyncServiceBrowser(azc.zeroconf, [SERVER_SERVICE_TYPE],
                                  handlers=[lambda zeroconf, service_type, name, state_change:
                                            names.add(name)])
    last = None
    while True:
        for name in list(names):
            info = AsyncServiceInfo(SERVER_SERVICE_TYPE, name)
            if await info.async_request(azc.zeroconf, 1000):
                seen = sorted(info.parsed_addresses())
                if seen != last:
                    print(json.dumps(seen), flush=True)
                    last = seen
        await asyncio.sleep(0.2)

asyncio.run(main())
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"yjz{uuid.uuid4().hex[:8]}"
    try:
        ip("netns", "add", name)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        pytest.skip(f"cannot make a network namespace here: {e}")
    try:
        ip("-n", name, "link", "set", "lo", "up")
        # A veth pair with both ends inside the namespace: a little LAN of its own.
        ip("-n", name, "link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
        ip("-n", name, "addr", "add", "10.231.0.1/24", "dev", "lan0")
        ip("-n", name, "link", "set", "lan0", "up")
        ip("-n", name, "link", "set", "lan1", "up")
        ip("-n", name, "route", "add", "224.0.0.0/4", "dev", "lan0")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
async def processes() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    procs: list[asyncio.subprocess.Process] = []
    yield procs
    for p in procs:
        if p.returncode is None:
            p.terminate()
            try:
                await asyncio.wait_for(p.wait(), 10)
            except TimeoutError:
                p.kill()
                await p.wait()


async def spawn(netns: str, *args: str, env: dict[str, str] | None = None
                ) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", netns, sys.executable, *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO), **(env or {})},
    )


async def read_until(proc: asyncio.subprocess.Process, wanted: str, timeout: float = 30) -> str:
    assert proc.stdout is not None

    async def scan() -> str:
        seen = []
        while True:
            line = (await proc.stdout.readline()).decode()  # type: ignore[union-attr]
            if not line:
                raise AssertionError(f"process ended before {wanted!r}: {''.join(seen)[-2000:]}")
            seen.append(line)
            if wanted in line:
                return line

    return await asyncio.wait_for(scan(), timeout)


async def test_new_address_is_announced(netns: str, processes: list[asyncio.subprocess.Process],
                                        tmp_path: Path) -> None:
    server = await spawn(
        netns, "-m", "server", "serve", "--data-dir", str(tmp_path / "data"), "--port", "0",
        "--host", "0.0.0.0", "--zeroconf-interfaces", "all",
        env={"YUANJIAO_ADDRESS_POLL_SECONDS": "0.2"},
    )
    processes.append(server)
    await read_until(server, "county server on")
    browser = await spawn(netns, "-c", BROWSE)
    processes.append(browser)
    first = json.loads(await read_until(browser, "10.231.0.1"))
    assert "10.231.0.2" not in first
    ip("-n", netns, "addr", "add", "10.231.0.2/24", "dev", "lan0")
    second = json.loads(await read_until(browser, "10.231.0.2"))
    assert {"10.231.0.1", "10.231.0.2"} <= set(second)

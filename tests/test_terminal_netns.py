"""Two hosts: the county server and a terminal in two network namespaces this test
creates, joined by a veth pair with 10.x addresses that exist only inside them.

Nothing is configured on the terminal but its id: it finds the server by mDNS on the
veth link, pins its key and takes its catalog; the server, browsing the same link,
lists the terminal as discovered (and online, from its heartbeats) in its fleet view.
Both namespaces are removed afterwards. Skipped, with the reason, where namespaces
cannot be made (not root, no `ip`, no CAP_NET_ADMIN).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.terminal_helpers import REPO, TERMINAL_ID

pytestmark = pytest.mark.asyncio
PORT = 8750


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str, str, str]]:
    """(server ns, terminal ns, server address, terminal address)."""
    if shutil.which("ip") is None:
        pytest.skip("the `ip` tool (iproute2) is not installed")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CAP_NET_ADMIN)")
    tag = f"{os.getpid() % 10000}{random.randrange(100, 999)}"
    srv, term = f"yjs{tag}", f"yjt{tag}"
    net = f"10.231.{random.randrange(1, 254)}"
    try:
        _ip("netns", "add", srv)
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot create a network namespace here: {e.stderr.decode().strip()}")
    try:
        _ip("netns", "add", term)
        _ip("link", "add", f"yja{tag}", "type", "veth", "peer", "name", f"yjb{tag}")
        _ip("link", "set", f"yja{tag}", "netns", srv)
        _ip("link", "set", f"yjb{tag}", "netns", term)
        for ns, dev, addr in ((srv, f"yja{tag}", f"{net}.1"), (term, f"yjb{tag}", f"{net}.2")):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up", "multicast", "on")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield srv, term, f"{net}.1", f"{net}.2"
    finally:
        for ns in (srv, term):
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", ns)


def _run(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, *args], cwd=REPO, input=stdin, capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout


@contextlib.asynccontextmanager
async def _process(ns: str, *args: str, env: dict[str, str] | None = None
                   ) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", ns, sys.executable, *args, cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})},
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _expect(proc: asyncio.subprocess.Process, pattern: str, seen: list[str]) -> re.Match[str]:
    assert proc.stderr is not None
    while line := (await proc.stderr.readline()).decode("utf-8", "replace"):
        seen.append(line)
        if m := re.search(pattern, line):
            return m
    raise AssertionError("the process ended first:\n" + "".join(seen[-30:]))


async def _fleet(ns: str, url: str, token: str) -> dict[str, object]:
    return await _admin(ns, url + "/api/v1/admin/fleet", token)


async def _admin(ns: str, url: str, token: str, post: bool = False) -> dict[str, object]:
    """An admin request made from inside a namespace (the test's own loop cannot reach it)."""
    data = "b'{}'" if post else "None"
    code = ("import json, sys, urllib.request\n"
            f"r = urllib.request.Request({url!r}, data={data}, "
            f"headers={{'Authorization': 'Bearer {token}', 'Content-Type': 'application/json'}})\n"
            "print(urllib.request.urlopen(r, timeout=5).read().decode())\n")
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", ns, sys.executable, "-c", code,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    body: dict[str, object] = json.loads(out)
    return body


async def test_server_and_terminal_find_each_other_across_a_veth_link(
    tmp_path: Path, namespaces: tuple[str, str, str, str],
) -> None:
    srv_ns, term_ns, srv_addr, term_addr = namespaces
    data = tmp_path / "server"
    await asyncio.to_thread(_run, "-m", "server", "import-county", str(REPO / "demo" / "county"),
                            "--data-dir", str(data))
    await asyncio.to_thread(_run, "-m", "server", "admin", "create", "admin", "--password-stdin",
                            "--data-dir", str(data), stdin="netns-test-password-1\n")
    token = (await asyncio.to_thread(_run, "-m", "server", "admin", "token", "admin", "--name",
                                     "netns test", "--data-dir", str(data))).split()[-1]
    url = f"http://{srv_addr}:{PORT}"
    server_log: list[str] = []
    terminal_log: list[str] = []
    async with _process(srv_ns, "-m", "server", "serve", "--data-dir", str(data), "--host", srv_addr,
                        "--port", str(PORT), "--zeroconf-interfaces", srv_addr,
                        env={"YUANJIAO_HEARTBEAT_INTERVAL": "1"}) as server:
        await asyncio.wait_for(_expect(server, r"listening on", server_log), 30)
        made = await _admin(srv_ns, f"{url}/api/v1/admin/terminals/{TERMINAL_ID}/enrollment", token,
                            post=True)
        # The site manager types the code; the terminal finds the server over mDNS to use it.
        enrolling = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", term_ns, sys.executable, "-m", "terminal", "enroll",
            str(made["code"]), "--data-dir", str(tmp_path / "terminal"), "--zeroconf-interfaces",
            term_addr, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(enrolling.communicate(), 60)
        assert enrolling.returncode == 0, err.decode()[-2000:]
        assert TERMINAL_ID in out.decode()
        async with _process(term_ns, "-m", "terminal", "run", "--data-dir", str(tmp_path / "terminal"),
                            "--terminal-id", TERMINAL_ID, "--zeroconf-interfaces", term_addr,
                            "--status-host", term_addr, "--status-port", "8760",
                            "--headless", "--no-progress") as terminal:
            found = await asyncio.wait_for(_expect(terminal, r"county server at (\S+)", terminal_log), 30)
            assert found[1] == url  # learnt over mDNS: no URL was given
            await asyncio.wait_for(_expect(terminal, r"catalog version \d+ in force", terminal_log), 30)

            async def seen_by_server() -> bool:
                fleet = await _fleet(srv_ns, url, token)
                terminals = fleet["terminals"]
                assert isinstance(terminals, list)
                return any(t["id"] == TERMINAL_ID and t["discovered"] and t["online"] for t in terminals)

            deadline = asyncio.get_running_loop().time() + 30
            while not await seen_by_server():
                assert asyncio.get_running_loop().time() < deadline, "".join(server_log[-20:])
                await asyncio.sleep(0.5)

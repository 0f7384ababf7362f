"""A county in network namespaces, for the peer test and the peer benchmark.

The county server in one namespace behind a rate-limited uplink (`tc tbf`), a router,
and two village LANs (Linux bridges in the router's namespace, multicast flooding so mDNS
works inside each LAN and not across) of three terminals each, every terminal in its own
namespace. Every program runs as a real process (`ip netns exec`). Addresses are 10.x,
only inside the namespaces, all removed afterwards.
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
from dataclasses import dataclass
from pathlib import Path

from tests.terminal_helpers import REPO

PORT = 8750
PIECE = 256 * 1024
UPLINK = "20mbit"
TERMINALS = {1: ["T140121100001", "T140121100002", "T140121100003"],
             2: ["T140121100004", "T140121100005", "T140121100006"]}


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@dataclass
class County:
    server_ns: str
    server_dev: str
    server_addr: str
    terminals: dict[str, tuple[str, str]]  # id -> (namespace, address)

    def tx_bytes(self) -> int:
        out = subprocess.run(["ip", "-n", self.server_ns, "-s", "-j", "link", "show", "dev",
                              self.server_dev], check=True, capture_output=True, timeout=10).stdout
        return int(json.loads(out)[0]["stats64"]["tx"]["bytes"])


class CannotBuild(Exception):
    """Namespaces cannot be made here; the message says why."""


@contextlib.contextmanager
def build_county() -> Iterator[County]:
    """The namespaces, links, bridges, routes and the uplink's `tc tbf`; all removed after."""
    if shutil.which("ip") is None or shutil.which("tc") is None:
        raise CannotBuild("the `ip` and `tc` tools (iproute2) are not installed")
    if os.geteuid() != 0:
        raise CannotBuild("network namespaces need root (CAP_NET_ADMIN)")
    tag = f"{os.getpid() % 1000}{random.randrange(10, 99)}"
    net = f"10.{random.randrange(100, 200)}"
    srv, rtr = f"yps{tag}", f"ypr{tag}"
    made: list[str] = []
    try:
        for ns in (srv, rtr):
            _ip("netns", "add", ns)
            made.append(ns)
    except subprocess.CalledProcessError as e:
        for ns in made:
            _ip("netns", "del", ns)
        raise CannotBuild(f"cannot create a network namespace here: {e.stderr.decode().strip()}") from e
    try:
        # the county server's uplink, rate-limited on its way out
        _ip("link", "add", f"ypa{tag}", "type", "veth", "peer", "name", f"ypb{tag}")
        _ip("link", "set", f"ypa{tag}", "netns", srv)
        _ip("link", "set", f"ypb{tag}", "netns", rtr)
        _ip("-n", srv, "addr", "add", f"{net}.0.2/24", "dev", f"ypa{tag}")
        _ip("-n", rtr, "addr", "add", f"{net}.0.1/24", "dev", f"ypb{tag}")
        for ns, dev in ((srv, f"ypa{tag}"), (rtr, f"ypb{tag}")):
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", srv, "route", "add", f"{net}.0.0/16", "via", f"{net}.0.1")
        subprocess.run(["tc", "-n", srv, "qdisc", "add", "dev", f"ypa{tag}", "root", "tbf", "rate",
                        UPLINK, "burst", "32kb", "latency", "100ms"], check=True, capture_output=True)
        subprocess.run(["ip", "netns", "exec", rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
                       check=True, capture_output=True)
        terminals: dict[str, tuple[str, str]] = {}
        for lan, ids in TERMINALS.items():
            bridge = f"ypl{lan}{tag}"
            _ip("-n", rtr, "link", "add", bridge, "type", "bridge", "mcast_snooping", "0")
            _ip("-n", rtr, "addr", "add", f"{net}.{lan}.1/24", "dev", bridge)
            _ip("-n", rtr, "link", "set", bridge, "up")
            for n, terminal_id in enumerate(ids, start=1):
                ns = f"ypt{lan}{n}{tag}"
                _ip("netns", "add", ns)
                made.append(ns)
                inside, outside = f"ypi{lan}{n}{tag}", f"ypo{lan}{n}{tag}"
                _ip("link", "add", inside, "type", "veth", "peer", "name", outside)
                _ip("link", "set", inside, "netns", ns)
                _ip("link", "set", outside, "netns", rtr)
                _ip("-n", rtr, "link", "set", outside, "master", bridge)
                _ip("-n", rtr, "link", "set", outside, "up")
                addr = f"{net}.{lan}.{10 + n}"
                _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", inside)
                _ip("-n", ns, "link", "set", inside, "up", "multicast", "on")
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "route", "add", "default", "via", f"{net}.{lan}.1")
                terminals[terminal_id] = (ns, addr)
        yield County(srv, f"ypa{tag}", f"{net}.0.2", terminals)
    finally:
        for ns in made:
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", ns)


def _run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, *args], cwd=REPO, input=stdin, capture_output=True,
                          text=True, timeout=120, check=True, env={**os.environ, **(env or {})})
    return done.stdout


async def _in(ns: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", ns, sys.executable, *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


async def _admin(ns: str, url: str, token: str, body: object = None) -> object:
    code = ("import json, sys, urllib.request\n"
            f"data = {json.dumps(body)!r}.encode() if {body is not None} else None\n"
            f"r = urllib.request.Request({url!r}, data=data, "
            f"headers={{'Authorization': 'Bearer {token}', 'Content-Type': 'application/json'}})\n"
            "print(urllib.request.urlopen(r, timeout=10).read().decode())\n")
    return json.loads(await _in(ns, "-c", code))


@contextlib.asynccontextmanager
async def _process(ns: str, *args: str, env: dict[str, str] | None = None,
                   log: Path | None = None) -> AsyncIterator[asyncio.subprocess.Process]:
    err = await asyncio.to_thread(open, log, "wb") if log is not None else None
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", ns, sys.executable, *args, cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=err if err is not None else asyncio.subprocess.DEVNULL,
        env={**os.environ, **(env or {})})
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
        if err is not None:
            err.close()


@dataclass
class Outcome:
    film_bytes: int
    egress_bytes: int  # what the server's uplink sent while the terminals fetched
    seconds: float  # from the terminals' start until every one holds the film verified


async def run_county(tmp_path: Path, county: County, film: Path, *, peers: bool = True,
                     timeout: float = 180) -> Outcome:
    """The server and six terminal processes in `county`; one film to the township."""
    size = film.stat().st_size
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "server"
    env = {"YUANJIAO_PIECE_SIZE": str(PIECE), "YUANJIAO_HEARTBEAT_INTERVAL": "1"}
    await asyncio.to_thread(_run, "-m", "server", "import-county", str(REPO / "demo" / "county"),
                            "--data-dir", str(data))
    await asyncio.to_thread(_run, "-m", "server", "admin", "create", "admin", "--password-stdin",
                            "--data-dir", str(data), stdin="netns-test-password-1\n")
    token = (await asyncio.to_thread(_run, "-m", "server", "admin", "token", "admin", "--name",
                                     "netns", "--data-dir", str(data))).split()[-1]
    added = await asyncio.to_thread(_run, "-m", "server", "add", str(film), "--title", "专题片",
                                    "--data-dir", str(data), env=env)
    found = re.search(r"\b([0-9a-f]{32})\b", added)  # "<title>: 已添加 / added <content id> (sha256 …)"
    assert found, added
    content_id = found.group(1)
    url = f"http://{county.server_addr}:{PORT}"
    async with _process(county.server_ns, "-m", "server", "serve", "--data-dir", str(data),
                        "--host", county.server_addr, "--port", str(PORT), "--no-zeroconf",
                        env=env, log=tmp_path / "server.log"):
        for _ in range(100):
            try:
                await _admin(county.server_ns, url + "/api/v1/admin/units", token)
                break
            except AssertionError:
                await asyncio.sleep(0.3)
        await _admin(county.server_ns, url + "/api/v1/admin/assignments", token,
                     {"content_id": content_id, "scope": "unit", "target": "140121100"})
        for terminal_id, (ns, _addr) in county.terminals.items():
            made = await _admin(county.server_ns,
                                f"{url}/api/v1/admin/terminals/{terminal_id}/enrollment", token, {})
            assert isinstance(made, dict)
            await _in(ns, "-m", "terminal", "enroll", str(made["code"]), "--server-url", url,
                      "--data-dir", str(tmp_path / terminal_id))
        before = county.tx_bytes()
        started = asyncio.get_running_loop().time()
        terminal_env = {} if peers else {"YUANJIAO_TERMINAL_PEER_SERVING": "0"}
        async with contextlib.AsyncExitStack() as stack:
            for terminal_id, (ns, addr) in county.terminals.items():
                await stack.enter_async_context(_process(
                    ns, "-m", "terminal", "run", "--data-dir", str(tmp_path / terminal_id),
                    "--server-url", url, "--zeroconf-interfaces", addr, "--status-host", addr,
                    "--status-port", "8760", "--headless", "--no-progress", env=terminal_env,
                    log=tmp_path / f"{terminal_id}.log"))

            async def all_ready() -> dict[str, object] | None:
                fleet = await _admin(county.server_ns, url + "/api/v1/admin/fleet", token)
                assert isinstance(fleet, dict)
                mine = {t["id"]: t for t in fleet["terminals"] if t["id"] in county.terminals}
                return fleet if all(t["ready_items"] == 1 for t in mine.values()) else None

            deadline = asyncio.get_running_loop().time() + timeout
            while not await all_ready():
                assert asyncio.get_running_loop().time() < deadline, \
                    (tmp_path / "T140121100004.log").read_text()[-3000:]
                await asyncio.sleep(1)
            seconds = asyncio.get_running_loop().time() - started
            egress = county.tx_bytes() - before
    return Outcome(film_bytes=size, egress_bytes=egress, seconds=seconds)

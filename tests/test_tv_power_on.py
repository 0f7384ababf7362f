"""Power-on to a useful screen, never black: the interface draws at once (saying it is
waiting for the terminal program when the daemon is not up yet), tells systemd READY=1
and keeps pinging WATCHDOG=1 over NOTIFY_SOCKET; once the daemon answers — with no
county server reachable at all — the home screen shows within seconds. The daemon
(`yuanjiao-terminal run`) speaks the same notify protocol."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from terminal.daemon import Terminal
from tests.conftest import REPO
from tests.terminal_helpers import TERMINAL_ID, terminal_config
from tests.tv_helpers import tv, xvfb

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


class Notifications:
    """A NOTIFY_SOCKET like systemd's: a datagram socket that collects messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.got: list[str] = []

    async def wait_for(self, message: str, timeout: float, count: int = 1) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while self.got.count(message) < count:
                data = await loop.sock_recv(self.sock, 4096)
                self.got.append(data.decode())


async def test_interface_is_up_at_once_and_home_follows(tmp_path: Path) -> None:
    notes = Notifications(tmp_path / "notify")
    os.environ["NOTIFY_SOCKET"] = str(notes.path)
    os.environ["WATCHDOG_USEC"] = "1000000"  # pings every half second
    try:
        config = terminal_config(tmp_path, server_url="http://127.0.0.1:9", status_port=0)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        async with xvfb() as display:
            started = time.monotonic()
            url = f"http://127.0.0.1:{port}"
            async with tv(display, url, config.data_dir, tmp_path / "tv.log") as screen:
                await notes.wait_for("READY=1", timeout=20)
                await screen.wait_for("home", up=False)
                await screen.screenshot("00-power-on-no-daemon-yet")
                await notes.wait_for("WATCHDOG=1", timeout=5)
                async with Terminal(config.replace(status_port=port)):
                    # no county server answers (port 9 is closed): the home screen all the same
                    await screen.wait_for("home", focus="settings", timeout=15)
                    ready_after = time.monotonic() - started
                    await screen.screenshot("00-power-on-offline-home")
            assert ready_after < 30
    finally:
        os.environ.pop("NOTIFY_SOCKET", None)
        os.environ.pop("WATCHDOG_USEC", None)
        notes.sock.close()


async def test_daemon_notifies_ready_and_watchdog(tmp_path: Path) -> None:
    notes = Notifications(tmp_path / "notify")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "terminal", "run", "--data-dir", str(tmp_path / "t"),
        "--terminal-id", TERMINAL_ID,
        "--no-zeroconf", "--status-host", "127.0.0.1", "--status-port", "0", "--headless", "--no-progress",
        "--server-url", "http://127.0.0.1:9", cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "NOTIFY_SOCKET": str(notes.path), "WATCHDOG_USEC": "400000"},
    )
    try:
        await notes.wait_for("READY=1", timeout=30)
        await notes.wait_for("WATCHDOG=1", timeout=5)
        await notes.wait_for("WATCHDOG=1", timeout=2, count=4)  # every 0.2 s while the loop turns
    finally:
        proc.terminate()
        await proc.wait()
        notes.sock.close()

"""A box that was never enrolled still runs: it advertises itself over mDNS (no terminal
id in its TXT record), so the county's fleet view lists it for a technician; when the
site manager enrolls it, the running daemon notices and stops, for its service manager
to start it again as the enrolled terminal."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import serve, server_config
from tests.terminal_helpers import REPO, TERMINAL_ID, enrollment_code, eventually

pytestmark = pytest.mark.asyncio


async def test_unenrolled_box_is_seen_then_enrolled(tmp_path: Path) -> None:
    config = server_config(tmp_path, zeroconf=True, zeroconf_interfaces=("127.0.0.1",))
    data = tmp_path / "box"
    async with serve(config, seed=True) as (running, http):
        daemon = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "terminal", "run", "--data-dir", str(data),
            "--zeroconf-interfaces", "127.0.0.1",
            "--status-host", "127.0.0.1", "--status-port", "0", "--headless", "--no-progress",
            cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "YUANJIAO_TERMINAL_VILLAGE_CODE": "140121100001"},
        )
        try:
            async def listed() -> Any:
                async with http.get("/api/v1/admin/fleet") as r:
                    boxes = (await r.json())["unenrolled"]
                return [b for b in boxes if b["village"] == "140121100001"]
            boxes = await eventually(listed, timeout=30)
            assert boxes[0]["addresses"] == ["127.0.0.1"] and boxes[0]["port"] > 0

            code = await enrollment_code(http, TERMINAL_ID)
            enrolling = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "terminal", "enroll", code, "--server-url", running.url,
                "--data-dir", str(data), cwd=REPO,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            _out, err = await asyncio.wait_for(enrolling.communicate(), 60)
            assert enrolling.returncode == 0, err.decode()
            # The running daemon sees the identity and stops by itself, cleanly.
            assert await asyncio.wait_for(daemon.wait(), 30) == 0
        finally:
            if daemon.returncode is None:
                daemon.kill()
                await daemon.wait()
        assert daemon.stderr is not None
        log = (await daemon.stderr.read()).decode()
        assert "not enrolled yet" in log and f"enrolled as {TERMINAL_ID}" in log

"""Killed mid-download, the terminal resumes where it was: the terminal runs as its own
process (`python -m terminal run`) under a bandwidth cap, is killed with SIGKILL part
way through a download, and is started again without the cap. The second run asks for
the rest with a Range that starts past zero (and no later than what the first run had
written), finishes, and the cached file hashes to the catalog's sha256."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.hashing import sha256_file
from tests.conftest import Server, make_clip
from tests.terminal_helpers import REPO, TERMINAL_ID, assign, enroll, terminal_config, upload

pytestmark = pytest.mark.asyncio
PROGRESS = re.compile(r"downloading (\w+): (\d+) of (\d+) bytes")
RESUMING = re.compile(r"resuming (\w+) from byte (\d+) of (\d+)")
READY = re.compile(r"ready: (\w+)")


async def _start(data_dir: Path, server_url: str, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "terminal", "run", "--data-dir", str(data_dir),
        "--terminal-id", TERMINAL_ID, "--server-url", server_url, "--no-zeroconf",
        "--status-host", "127.0.0.1", "--status-port", "0", "--progress-log-seconds", "0.05",
        "--no-progress", *extra,
        cwd=REPO, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def _lines(proc: asyncio.subprocess.Process) -> AsyncIterator[str]:
    assert proc.stderr is not None
    while line := await proc.stderr.readline():
        yield line.decode("utf-8", "replace")


async def _until(proc: asyncio.subprocess.Process, pattern: re.Pattern[str], sha: str,
                 accept: object = None) -> re.Match[str]:
    seen: list[str] = []
    async for line in _lines(proc):
        seen.append(line)
        m = pattern.search(line)
        if m and sha.startswith(m[1]) and (accept is None or accept(m)):  # type: ignore[operator]
            return m
    raise AssertionError("the terminal ended without the expected line:\n" + "".join(seen[-30:]))


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        async for _ in _lines(proc):
            pass
        await asyncio.wait_for(proc.wait(), 20)


async def test_sigkill_mid_download_then_resume(tmp_path: Path, server: Server) -> None:
    film = await asyncio.to_thread(make_clip, tmp_path / "film.mp4", 6, "480x360", 550, "testsrc2")
    size = film.stat().st_size
    content_id, sha = await upload(server.http, film, "专题片：红色记忆")
    await assign(server.http, content_id)
    data_dir = tmp_path / "terminal"
    await enroll(server.http, terminal_config(tmp_path, server.url), server.url)
    part = data_dir / "cache" / f"{sha}.part"

    # a cap that makes the download take about four seconds
    first = await _start(data_dir, server.url, "--bandwidth-limit", str(max(16_384, size // 4)))
    try:
        await asyncio.wait_for(
            _until(first, PROGRESS, sha, lambda m: size // 4 <= int(m[2]) <= size * 3 // 4), 60)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert first.returncode == -signal.SIGKILL
    kept = part.stat().st_size
    assert 0 < kept < size
    assert not (data_dir / "clean-shutdown").exists()

    second = await _start(data_dir, server.url)
    try:
        resumed = await asyncio.wait_for(_until(second, RESUMING, sha), 60)
        assert 0 < int(resumed[2]) <= kept
        assert int(resumed[3]) == size
        await asyncio.wait_for(_until(second, READY, sha), 60)
    finally:
        await _stop(second)
    assert second.returncode == 0

    cached = data_dir / "cache" / sha
    assert await asyncio.to_thread(sha256_file, cached) == sha
    assert not part.exists()

    status = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "terminal", "status", "--json", "--data-dir", str(data_dir),
        "--terminal-id", TERMINAL_ID, "--status-port", "1", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out, _ = await status.communicate()
    items = {i["sha256"]: i for i in json.loads(out)["items"]}
    assert items[sha]["state"] == "ready"
    assert items[sha]["resumed_from"] == int(resumed[2])

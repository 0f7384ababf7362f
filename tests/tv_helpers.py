"""Helpers for the TV interface tests: an Xvfb display the test starts, the interface
as its own process, key presses with xdotool, the window's name (screen, focus,
entries) and screenshots saved under test-artifacts/tv/."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts" / "tv"
SIZE = (1920, 1080)


def need_x() -> None:
    for tool in ("Xvfb", "xdotool", "ffmpeg"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup installs it)")


@contextlib.asynccontextmanager
async def xvfb() -> AsyncIterator[str]:
    """A fresh Xvfb at 1920x1080; yields its DISPLAY (e.g. ':93')."""
    need_x()
    number = 90 + os.getpid() % 400
    while Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
        number += 1
    display = f":{number}"
    proc = await asyncio.create_subprocess_exec(
        "Xvfb", display, "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24", "-nolisten", "tcp", "-noreset",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(20):
            while not Path(f"/tmp/.X11-unix/X{number}").exists():
                if proc.returncode is not None:
                    raise RuntimeError("Xvfb exited")
                await asyncio.sleep(0.05)
        yield display
    finally:
        proc.terminate()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await proc.wait()


async def run(*args: str, display: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *args, env={**os.environ, "DISPLAY": display},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {err.decode(errors='replace')}")
    return out.decode(errors="replace")


@dataclass
class WindowState:
    screen: str
    up: bool  # the daemon answers
    focus: str
    typed: str
    entries: list[str]


@dataclass
class Tv:
    """The interface process on `display`, driven by key presses only."""

    display: str
    proc: asyncio.subprocess.Process
    log: Path

    async def keys(self, *names: str) -> None:
        """Press and release each X key in turn (keysym names: Return, Down, 1, F4 …)."""
        for name in names:
            await run("xdotool", "key", "--clearmodifiers", name, display=self.display)
            await asyncio.sleep(0.05)  # a person's pace: separate presses, not an auto-repeat

    async def state(self) -> WindowState | None:
        try:
            out = await run("xdotool", "search", "--classname", "yuanjiao-tv", "getwindowname", "%@",
                            display=self.display)
        except RuntimeError:
            return None
        for line in out.splitlines():
            if line.startswith("yuanjiao-tv|"):
                _, screen, up, focus, typed, entries = line.split("|", 5)
                return WindowState(screen, up == "up", focus, typed.strip("-"),
                                   [e for e in entries.split(",") if e])
        return None

    async def wait_for(self, screen: str, *, focus: str | None = None, timeout: float = 30,
                       has: str | None = None, up: bool = True) -> WindowState:
        deadline = asyncio.get_running_loop().time() + timeout
        last = None
        while True:
            last = await self.state()
            if last is not None and last.screen == screen and (focus is None or last.focus == focus) \
                    and (has is None or has in last.entries) and last.up == up:
                return last
            if self.proc.returncode is not None:
                raise AssertionError(f"the interface exited: {self.log.read_text()[-2000:]}")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"waited for {screen} (focus {focus}, has {has}); window says {last}")
            await asyncio.sleep(0.1)

    async def hold(self, name: str, seconds: float) -> None:
        """Hold a key down (the X server auto-repeats it), then let it go."""
        await run("xdotool", "keydown", name, display=self.display)
        await asyncio.sleep(seconds)
        await run("xdotool", "keyup", name, display=self.display)

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await run("ffmpeg", "-y", "-v", "error", "-f", "x11grab", "-video_size", f"{SIZE[0]}x{SIZE[1]}",
                  "-i", self.display, "-frames:v", "1", str(path), display=self.display)
        return path


@contextlib.asynccontextmanager
async def tv(display: str, status_url: str, data_dir: Path, log: Path) -> AsyncIterator[Tv]:
    """Start `yuanjiao-terminal tv` on `display`, talking to the daemon at `status_url`."""
    handle = log.open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "terminal", "tv", "--data-dir", str(data_dir), "--status-url", status_url,
        "-v", env={**os.environ, "DISPLAY": display}, stdout=handle, stderr=handle,
    )
    try:
        yield Tv(display, proc, log)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        handle.close()

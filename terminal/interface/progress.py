"""Text progress bars for downloads, drawn only when the output is a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

from terminal.interface.snapshot import ItemStatus, Snapshot

SnapshotSource = Callable[[], Awaitable[Snapshot]]


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def bar(done: int, total: int, width: int = 30) -> str:
    frac = 1.0 if total <= 0 else min(1.0, done / total)
    filled = int(frac * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {frac * 100:5.1f}%"


def item_line(item: ItemStatus) -> str:
    name = (item.title or item.sha256[:12])[:24]
    return f"{name:<24} {bar(item.bytes_present, item.size)} {human(item.bytes_present)}/{human(item.size)}"


def download_lines(snapshot: Snapshot) -> list[str]:
    return [item_line(i) for i in snapshot.items if i.state == "downloading"]


async def show(snapshot: SnapshotSource, out: TextIO = sys.stdout, every: float = 0.5) -> None:
    """Redraw the bars of running downloads until cancelled."""
    drawn = 0
    try:
        while True:
            lines = download_lines(await snapshot())
            if drawn:
                out.write(f"\x1b[{drawn}F\x1b[J")  # back to the first bar, clear below
            for line in lines:
                out.write(line + "\n")
            out.flush()
            drawn = len(lines)
            await asyncio.sleep(every)
    finally:
        with contextlib.suppress(Exception):
            out.flush()

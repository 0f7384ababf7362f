"""The player's overlay is really drawn over the video, on a real X server (Xvfb).

libvlc's marquee is the only thing drawn over a playing video. The test plays a black
clip in the player's own libvlc process and reads the screen back: with the overlay on,
white text appears over the black picture while the words are refreshed twice a second
(as the TV does); hidden again, it is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from terminal.playback.player import Player
from terminal.storage.cache import VerifiedMedia
from tests.tv_helpers import need_x, xvfb

pytestmark = pytest.mark.asyncio
W, H = 320, 240


def _black_clip(path: Path) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                    f"color=black:size={W}x{H}:rate=25", "-t", "30", "-pix_fmt", "yuv420p",
                    "-c:v", "libx264", str(path)], check=True)
    return path


async def _white_pixels(display: str) -> int:
    """Light pixels in the top-left W×H of the screen (where libvlc's own window opens)."""
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-v", "error", "-f", "x11grab", "-video_size", f"{W}x{H}", "-i", display,
        "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    return sum(1 for b in out if b > 120)


async def _until(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.2)


async def test_overlay_is_drawn_over_the_video_and_hidden_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need_x()
    clip = await asyncio.to_thread(_black_clip, tmp_path / "black.mp4")
    async with xvfb() as display:
        monkeypatch.setenv("DISPLAY", display)  # the player's process draws on this X server
        player = Player(extra_args=("--vout=xcb_x11", "--aout=dummy"))
        async with player:
            media = VerifiedMedia(sha256="0" * 64, path=clip, title="黑场", duration=30.0)
            playing = asyncio.create_task(player.play(media))
            try:
                async def video_shown() -> bool:
                    return player.state == "playing" and (player.stats is not None
                                                          and player.stats.position_seconds > 0.5)
                await _until(video_shown, 20)
                assert await _white_pixels(display) < 5  # a black picture, nothing over it

                async def refresh() -> None:  # as the TV does: new words twice a second
                    n = 0
                    while True:
                        await player.overlay(f"冬训第一课\n00:{n:02d} / 00:30  已签到 3 人")
                        n += 1
                        await asyncio.sleep(0.5)

                refresher = asyncio.create_task(refresh())

                async def drawn() -> bool:
                    return await _white_pixels(display) > 60  # the words, even in small type
                try:
                    await _until(drawn, 10)
                finally:
                    refresher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await refresher

                await player.overlay(None)

                async def gone() -> bool:
                    return await _white_pixels(display) < 5
                await _until(gone, 10)
            finally:
                await player.stop()
                playing.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await playing

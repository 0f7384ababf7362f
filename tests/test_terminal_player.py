"""The libvlc player, headless (`--vout=dummy --aout=dummy`), on real generated clips.

* Played through at 8x, a 5 s clip counts 5 watched seconds, and libvlc's events reach
  asyncio without blocking the loop.
* Seeking forward over a stretch does not count the stretch; a pause adds nothing.
* Items played back to back each count in full (late events of one item are ignored).
* The player takes only media the cache verified; anything else is refused.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shared.hashing import sha256_file
from terminal.playback.player import Player
from terminal.storage.cache import VerifiedMedia

pytestmark = pytest.mark.asyncio


async def _media(clip: Path, duration: float = 5.0) -> VerifiedMedia:
    sha = await asyncio.to_thread(sha256_file, clip)
    return VerifiedMedia(sha256=sha, path=clip, title="clip", duration=duration)


async def _reach(player: Player, seconds: float) -> None:
    reached = asyncio.Event()

    def check() -> None:
        if player.stats is not None and player.stats.position_seconds >= seconds:
            reached.set()

    player.listeners.append(check)
    try:
        await asyncio.wait_for(reached.wait(), 20)
    finally:
        player.listeners.remove(check)


async def test_full_play_counts_media_time(clip: Path) -> None:
    async with Player(headless=True, rate=8.0) as player:
        stats = await asyncio.wait_for(player.play(await _media(clip)), 20)
    assert stats.ended and stats.errors == 0
    assert stats.watched_seconds == pytest.approx(5.0, abs=0.5)


async def test_seek_over_a_stretch_does_not_count_it(clip: Path) -> None:
    async with Player(headless=True, rate=2.0) as player:
        task = asyncio.create_task(player.play(await _media(clip)))
        await _reach(player, 1.0)
        await player.seek(4.0)
        stats = await asyncio.wait_for(task, 20)
    assert stats.ended
    assert 1.0 <= stats.watched_seconds <= 3.0  # about 1 s before the seek, 1 s after


async def test_pause_adds_nothing(clip: Path) -> None:
    async with Player(headless=True, rate=2.0) as player:
        task = asyncio.create_task(player.play(await _media(clip)))
        await _reach(player, 1.0)
        await player.pause()
        paused_at = player.stats.watched_seconds if player.stats else 0.0
        await asyncio.sleep(1.0)  # the pause itself is what is tested: wall time passes
        assert player.stats is not None and player.stats.watched_seconds == pytest.approx(paused_at, abs=0.6)
        await player.resume()
        stats = await asyncio.wait_for(task, 20)
    assert stats.watched_seconds == pytest.approx(5.0, abs=0.6)


async def test_only_verified_media_is_played(clip: Path) -> None:
    async with Player(headless=True) as player:
        with pytest.raises(TypeError):
            await player.play(clip)  # type: ignore[arg-type]
        assert player.played == []


async def test_a_playlist_plays_back_to_back(clip: Path, clip2: Path) -> None:
    """The end and stop events of one item never cut the next one short."""
    async with Player(headless=True, rate=8.0) as player:
        first = await asyncio.wait_for(player.play(await _media(clip)), 20)
        second = await asyncio.wait_for(player.play(await _media(clip2, duration=4.0)), 20)
        third = await asyncio.wait_for(player.play(await _media(clip)), 20)
    assert first.ended and second.ended and third.ended
    assert first.watched_seconds == pytest.approx(5.0, abs=0.5)
    assert second.watched_seconds == pytest.approx(4.0, abs=0.5)
    assert third.watched_seconds == pytest.approx(5.0, abs=0.5)

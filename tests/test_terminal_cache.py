"""The cache never hands the player bytes it has not just verified.

* A cached file with one byte flipped (its modification time put back, so nothing but
  the hash can tell) is caught when a session is about to play it: the item is skipped,
  never given to libvlc, fetched again, and plays once it verifies.
* A flipped byte that changes the file's modification time is caught by the scrub's next
  pass (a stat of every ready file), before any session asks for it.
* After an unclean shutdown (no clean-shutdown marker) every ready file is uncertain and
  is hashed again; a corrupt one is fetched again.
* The quota: an item no longer assigned is evicted to make room for a new one; when
  nothing can be evicted, downloads pause with a clear "disk full" condition while the
  cached item still plays.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from shared.hashing import sha256_file
from terminal.daemon import Terminal
from terminal.playback.player import Player
from terminal.playback.sessions import SessionSpec
from tests.conftest import Server
from tests.terminal_helpers import assign, enroll, item_state, terminal_config, upload

pytestmark = pytest.mark.asyncio


def _flip(path: Path, offset: int, keep_mtime: bool) -> None:
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


async def test_flipped_byte_is_never_played_and_is_fetched_again(
    tmp_path: Path, server: Server, clip: Path,
) -> None:
    content_id, sha = await upload(server.http, clip, "党课")
    await assign(server.http, content_id)
    config = await enroll(server.http, terminal_config(tmp_path, server.url), server.url)
    async with Player(headless=True, rate=8.0) as player, Terminal(config, player=player) as terminal:
        await terminal.wait_until(item_state(terminal, sha), timeout=30)
        cached = config.cache_dir / sha
        await asyncio.to_thread(_flip, cached, 1000, True)

        result = await terminal.run_session(SessionSpec("试播", [sha]), ["1"])
        assert result.skipped == [sha]
        assert sha not in player.played
        assert result.watched == {}

        await terminal.wait_until(item_state(terminal, sha), timeout=30)  # fetched again
        assert await asyncio.to_thread(sha256_file, cached) == sha
        again = await terminal.run_session(SessionSpec("重播", [sha]), ["1"])
        assert player.played == [sha]
        assert again.watched[sha] == pytest.approx(5.0, abs=0.5)


async def test_changed_file_is_caught_by_the_next_scrub_pass(
    tmp_path: Path, server: Server, clip: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    content_id, sha = await upload(server.http, clip, "党课")
    await assign(server.http, content_id)
    config = await enroll(server.http, terminal_config(tmp_path, server.url), server.url)
    async with Terminal(config) as terminal:
        await terminal.wait_until(item_state(terminal, sha), timeout=30)
        cached = config.cache_dir / sha
        with caplog.at_level(logging.ERROR, logger="terminal.storage.cache"):
            await asyncio.to_thread(_flip, cached, 2000, False)
            terminal.scrubber.wake()
            await terminal.wait_until(lambda: any("is corrupt" in r.message for r in caplog.records), 30)
        await terminal.wait_until(item_state(terminal, sha), timeout=30)
        assert await asyncio.to_thread(sha256_file, cached) == sha


async def test_unclean_shutdown_verifies_again(tmp_path: Path, server: Server, clip: Path) -> None:
    content_id, sha = await upload(server.http, clip, "党课")
    await assign(server.http, content_id)
    config = await enroll(server.http, terminal_config(tmp_path, server.url), server.url)
    async with Terminal(config) as terminal:
        await terminal.wait_until(item_state(terminal, sha), timeout=30)
    assert config.clean_marker.exists()
    # as if the power had been cut: no marker, and a file damaged where a stat cannot see
    config.clean_marker.unlink()
    await asyncio.to_thread(_flip, config.cache_dir / sha, 500, True)

    async with Player(headless=True, rate=8.0) as player, Terminal(config, player=player) as terminal:
        assert not terminal.cache.was_clean
        await terminal.wait_until(item_state(terminal, sha), timeout=30)
        assert await asyncio.to_thread(sha256_file, config.cache_dir / sha) == sha
        result = await terminal.run_session(SessionSpec("试播", [sha]), ["1"])
        assert player.played == [sha] and not result.skipped


async def test_quota_evicts_unassigned_and_pauses_when_full(
    tmp_path: Path, server: Server, clip: Path, clip2: Path,
) -> None:
    id1, sha1 = await upload(server.http, clip, "旧片")
    id2, sha2 = await upload(server.http, clip2, "新片")
    size1, size2 = clip.stat().st_size, clip2.stat().st_size
    a1 = await assign(server.http, id1)
    quota = max(size1, size2) + 1000
    config = await enroll(server.http, terminal_config(tmp_path, server.url, cache_quota_bytes=quota),
                          server.url)
    async with Terminal(config) as terminal:
        await terminal.wait_until(item_state(terminal, sha1), timeout=30)

        # the new item does not fit beside the old one while the old one is assigned
        a2 = await assign(server.http, id2)
        terminal.wake_sync()

        async def paused() -> bool:
            return (await terminal.snapshot()).condition.startswith("disk full")

        await terminal.wait_until(paused, timeout=30)
        assert (config.cache_dir / sha1).exists()
        result = await terminal.run_session(SessionSpec("照常放映", [sha1]), ["1"])
        assert result.watched[sha1] > 4  # everything cached still plays

        # withdrawn, the old item is evicted to make room
        async with server.http.delete(f"/api/v1/admin/assignments/{a1}") as r:
            assert r.status == 204
        terminal.wake_sync()
        await terminal.wait_until(item_state(terminal, sha2), timeout=30)
        assert not (config.cache_dir / sha1).exists()
        snap = await terminal.snapshot()
        assert snap.condition == "ok"
        assert sha1 not in {i.sha256 for i in snap.items}
        assert a2

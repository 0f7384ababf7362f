"""Which containers and video codecs an upload may use follows what the terminals'
libvlc plays: one sample of each accepted kind is accepted by the server's probe, played
to its end by the terminal's player on the real libvlc (`--vout=dummy`) with no playback
error, and libvlc's own statistics show video frames decoded.

The samples are made here with ffmpeg, plus the field's Windows Media (.wmv), DVD title
(.VOB) and RealMedia (.rmvb) files: libvlc decodes RealVideo, so RealMedia is accepted
rather than refused for a reason the terminals do not have. Accepted codecs without an
encoder here (wmv3, vc1, rv30, rv40) rest on the same libvlc decoders as wmv1/wmv2 and
rv10/rv20, which are played.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
import vlc

from server.media import probe
from shared.hashing import sha256_file
from terminal.playback.player import Player
from terminal.storage.cache import VerifiedMedia
from tests.conftest import REPO

pytestmark = pytest.mark.asyncio
VIDEO = REPO / "tests" / "field_cases" / "video"
SAMPLE_SECONDS = 2

# (file name, ffmpeg video options, expected container, expected codec)
KINDS = [
    ("h264.mp4", ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"], "mp4", "h264"),
    ("mpeg4.mov", ["-c:v", "mpeg4"], "mov", "mpeg4"),
    ("hevc.mkv", ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"],
     "matroska", "hevc"),
    ("vp8.webm", ["-c:v", "libvpx", "-deadline", "realtime"], "webm", "vp8"),
    ("vp9.webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"], "webm", "vp9"),
    ("msmpeg4v3.avi", ["-c:v", "msmpeg4"], "avi", "msmpeg4v3"),
    ("msmpeg4v2.avi", ["-c:v", "msmpeg4v2"], "avi", "msmpeg4v2"),
    ("h264.ts", ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"], "mpegts", "h264"),
    ("mpeg1.mpg", ["-c:v", "mpeg1video"], "mpeg", "mpeg1video"),
    ("flv1.flv", ["-c:v", "flv"], "flv", "flv1"),
    ("wmv1.wmv", ["-c:v", "wmv1"], "asf", "wmv1"),
    ("theora.ogv", ["-c:v", "libtheora"], "ogg", "theora"),
    ("h263.3gp", ["-c:v", "h263", "-s", "176x144"], "mov", "h263"),
    ("av1.mkv", ["-c:v", "libsvtav1", "-preset", "12"], "matroska", "av1"),
    ("rv10.rm", ["-c:v", "rv10"], "rm", "rv10"),
]


def make(path: Path, options: list[str]) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=176x144:rate=25", "-t", str(SAMPLE_SECONDS), *options, "-an",
                    str(path)], check=True)
    return path


async def accepted_and_played(path: Path, container: str, codec: str) -> None:
    info = await probe.probe(path, timeout=30)
    await probe.check_decodes(path, timeout=30)
    assert container in info.container.split(",") and info.video_codec == codec
    assert codec in probe.VIDEO_CODECS
    media = VerifiedMedia(sha256=await asyncio.to_thread(sha256_file, path), path=path,
                          title=path.name, duration=info.duration_seconds)
    async with Player(headless=True, rate=4.0) as player:
        stats = await asyncio.wait_for(player.play(media), 30)
    assert stats.ended and stats.errors == 0, (path.name, stats)
    assert stats.watched_seconds > info.duration_seconds / 2
    assert await asyncio.to_thread(decoded_video_frames, path) > 10


def decoded_video_frames(path: Path) -> int:
    """Video frames libvlc decoded playing `path` through (blocking, bounded to 30 s)."""
    instance = vlc.Instance(["--vout=dummy", "--aout=dummy", "--quiet", "--rate=4"])
    try:
        media = instance.media_new_path(str(path))
        player = instance.media_player_new()
        player.set_media(media)
        player.play()
        deadline = time.monotonic() + 30
        while player.get_state() not in (vlc.State.Ended, vlc.State.Error):
            assert time.monotonic() < deadline, f"{path.name} did not finish"
            time.sleep(0.05)
        stats = vlc.MediaStats()
        media.get_stats(stats)
        player.stop()
        player.release()
        return int(stats.decoded_video)
    finally:
        instance.release()


@pytest.mark.parametrize(("name", "options", "container", "codec"), KINDS,
                         ids=[k[0] for k in KINDS])
async def test_generated_kind(tmp_path: Path, name: str, options: list[str], container: str,
                              codec: str) -> None:
    path = await asyncio.to_thread(make, tmp_path / name, options)
    await accepted_and_played(path, container, codec)


@pytest.mark.parametrize(("name", "container", "codec"), [
    ("lecture.wmv", "asf", "wmv2"), ("dvd_VTS_01_1.VOB", "mpeg", "mpeg2video"),
    ("partyfilm.rmvb", "rm", "rv20"),
])
async def test_field_kind(name: str, container: str, codec: str) -> None:
    await accepted_and_played(VIDEO / name, container, codec)

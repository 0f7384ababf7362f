"""ffprobe and ffmpeg, run as subprocesses with whitelists and a timeout.

Only local files are opened (`protocol_whitelist=file`) and only real container formats
are demuxed, so a playlist (HLS, concat) that points elsewhere is refused rather than
followed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

# Demuxers an upload may use: the containers county material actually comes in.
FORMATS: Final = "mov,mp4,matroska,webm,avi,mpegts,mpeg,flv,asf"
# Video codecs the terminals' libvlc plays.
VIDEO_CODECS: Final = frozenset({
    "h264", "hevc", "mpeg4", "mpeg2video", "mpeg1video", "vp8", "vp9", "av1",
    "msmpeg4v2", "msmpeg4v3", "wmv1", "wmv2", "wmv3", "vc1", "theora", "flv1", "h263",
})


class ProbeError(Exception):
    """The file is not a video the network can distribute; the message says why."""


@dataclass(frozen=True)
class MediaInfo:
    container: str
    duration_seconds: float
    video_codec: str
    audio_codec: str | None
    width: int | None
    height: int | None


async def _run(args: list[str], timeout: float) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out, err


def _last_line(err: bytes) -> str:
    lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


async def probe(path: Path, timeout: float) -> MediaInfo:
    args = [
        "ffprobe", "-v", "error", "-protocol_whitelist", "file", "-format_whitelist", FORMATS,
        "-print_format", "json", "-show_format", "-show_streams", f"file:{path}",
    ]
    try:
        code, out, err = await _run(args, timeout)
    except TimeoutError:
        raise ProbeError(f"the file could not be read within {timeout:.0f} s") from None
    if code != 0:
        raise ProbeError(f"not a readable video file ({_last_line(err)})")
    try:
        data: dict[str, Any] = json.loads(out)
    except ValueError:
        raise ProbeError("ffprobe gave no usable answer for this file") from None
    return media_info(data)


def media_info(data: dict[str, Any]) -> MediaInfo:
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    videos = [
        s for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    if not videos:
        raise ProbeError("the file has no video stream (audio or pictures alone cannot be shown)")
    video = videos[0]
    codec = str(video.get("codec_name") or "unknown")
    if codec not in VIDEO_CODECS:
        raise ProbeError(
            f"video codec {codec!r} is not supported by the terminals; convert it to H.264 MP4"
        )
    try:
        duration = float(fmt.get("duration") or video.get("duration") or 0)
    except ValueError:
        duration = 0.0
    if not duration > 0:
        raise ProbeError("the video has no duration (empty or truncated file)")
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    return MediaInfo(
        container=str(fmt.get("format_name") or "unknown"),
        duration_seconds=duration,
        video_codec=codec,
        audio_codec=str(audios[0].get("codec_name")) if audios else None,
        width=_int(video.get("width")),
        height=_int(video.get("height")),
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


async def check_decodes(path: Path, timeout: float) -> None:
    """Decode the first frames: catches files whose header is fine but whose data is cut."""
    args = [
        "ffmpeg", "-v", "error", "-nostdin", "-protocol_whitelist", "file",
        "-format_whitelist", FORMATS, "-i", f"file:{path}", "-map", "0:v:0",
        "-frames:v", "5", "-f", "null", "-",
    ]
    try:
        code, _out, err = await _run(args, timeout)
    except TimeoutError:
        raise ProbeError(f"the video could not be decoded within {timeout:.0f} s") from None
    if code != 0:
        raise ProbeError(f"the video cannot be decoded ({_last_line(err)})")


async def extract_poster(path: Path, duration: float, out: Path, timeout: float) -> bool:
    """Write a JPEG poster frame 10% into the video; False if none could be made."""
    at = min(duration * 0.1, 30.0)
    args = [
        "ffmpeg", "-v", "error", "-nostdin", "-y", "-protocol_whitelist", "file",
        "-format_whitelist", FORMATS, "-ss", f"{at:.3f}", "-i", f"file:{path}",
        "-frames:v", "1", "-vf", "scale=320:-2", "-f", "image2", "-c:v", "mjpeg", str(out),
    ]
    try:
        code, _out, err = await _run(args, timeout)
    except TimeoutError:
        log.warning("poster extraction timed out for %s", path.name)
        return False
    if code != 0 or not await asyncio.to_thread(_nonempty, out):
        log.warning("no poster for %s: %s", path.name, _last_line(err))
        return False
    return True


def _nonempty(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0

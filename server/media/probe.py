"""ffprobe and ffmpeg, run as subprocesses with whitelists and a timeout.

Only local files are opened (`protocol_whitelist=file`) and only real container formats
are demuxed, so a playlist (HLS, concat) that points elsewhere is refused rather than
followed.

A refusal is a ProbeError with a code (`audio_only`, `empty_file`, `unsupported_codec`,
`realmedia`, `unreadable_video`, `no_duration`, `probe_timeout`), English text
that names the problem and the fix, and details; never ffmpeg's own text or a path
(those go to the log). The containers and codecs accepted are those the terminals'
libvlc plays (tests/test_playable_kinds.py plays one sample of each).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

# Demuxers an upload may use: the containers county material actually comes in (asf is
# Windows Media, mpeg is a DVD's VOB, rm is RealMedia .rm/.rmvb, which much older 远教
# material is and the terminals' libvlc plays). The audio-only ones are there so that a
# sound recording is told "no video stream" rather than "not readable".
FORMATS: Final = "mov,mp4,matroska,webm,avi,mpegts,mpeg,flv,asf,rm,ogg,mp3,wav,aac,flac"
CONVERT_EN: Final = "convert it to an H.264 MP4 (for example with FormatFactory or HandBrake) and upload that"
# Video codecs the terminals' libvlc plays.
VIDEO_CODECS: Final = frozenset({
    "h264", "hevc", "mpeg4", "mpeg2video", "mpeg1video", "vp8", "vp9", "av1",
    "msmpeg4v2", "msmpeg4v3", "wmv1", "wmv2", "wmv3", "vc1", "theora", "flv1", "h263",
    "rv10", "rv20", "rv30", "rv40",
})


class ProbeError(Exception):
    """The file is not a video the network can distribute; the message says why and what
    to do, `code` names the reason for the error table, `details` fills its template."""

    def __init__(self, code: str, message: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


@dataclass(frozen=True)
class MediaInfo:
    container: str
    duration_seconds: float
    video_codec: str
    audio_codec: str | None
    width: int | None  # as displayed: a portrait phone video is taller than wide
    height: int | None


async def _run(args: list[str], timeout: float) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:  # a timeout, or the server stopping mid-probe: leave no process behind
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out, err


def _last_line(err: bytes) -> str:
    lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def _sniff(path: Path) -> None:
    """Refusals that need no ffprobe: an empty file."""
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        raise ProbeError("empty_file", "the file is empty (0 bytes); choose the video file again")


async def probe(path: Path, timeout: float) -> MediaInfo:
    await asyncio.to_thread(_sniff, path)
    args = [
        "ffprobe", "-v", "error", "-protocol_whitelist", "file", "-format_whitelist", FORMATS,
        "-print_format", "json", "-show_format", "-show_streams", f"file:{path}",
    ]
    try:
        code, out, err = await _run(args, timeout)
    except TimeoutError:
        raise ProbeError("probe_timeout", f"the file could not be read within {timeout:.0f} s; "
                         f"{CONVERT_EN}", {"seconds": f"{timeout:.0f}"}) from None
    if code != 0:
        log.info("ffprobe refused %s: %s", path.name, _last_line(err))
        raise _unreadable()
    try:
        data: dict[str, Any] = json.loads(out)
    except ValueError:
        raise _unreadable() from None
    return media_info(data)


def _unreadable() -> ProbeError:
    return ProbeError("unreadable_video", "this is not a readable video file (not a video, damaged, "
                      f"or not completely uploaded); check the file, or {CONVERT_EN}")


def media_info(data: dict[str, Any]) -> MediaInfo:
    """What a viewer sees, from ffprobe's JSON; ProbeError if the terminals cannot show it."""
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    videos = [
        s for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        if audios:
            raise ProbeError("audio_only", "this file has no video stream, only sound; upload a "
                             "video file (a sound recording needs pictures added, as an MP4)")
        raise _unreadable()
    video = videos[0]
    codec = str(video.get("codec_name") or "unknown")
    if codec not in VIDEO_CODECS and "rm" in str(fmt.get("format_name", "")).split(","):
        raise ProbeError("realmedia", f"this RealMedia file's video ({codec}) is not one the village "
                         f"terminals can play; {CONVERT_EN}", {"codec": codec})
    if codec not in VIDEO_CODECS:
        raise ProbeError("unsupported_codec", f"the village terminals cannot play {codec} video; "
                         f"{CONVERT_EN}", {"codec": codec})
    try:
        duration = float(fmt.get("duration") or video.get("duration") or 0)
    except ValueError:
        duration = 0.0
    if not duration > 0:
        raise ProbeError("no_duration", "the video has no duration (empty or cut-off file); "
                         "export it again and upload that")
    width, height = _int(video.get("width")), _int(video.get("height"))
    if _rotation(video) % 180 == 90:
        width, height = height, width
    return MediaInfo(
        container=str(fmt.get("format_name") or "unknown"),
        duration_seconds=duration,
        video_codec=codec,
        audio_codec=str(audios[0].get("codec_name")) if audios else None,
        width=width,
        height=height,
    )


def _rotation(video: dict[str, Any]) -> int:
    """Degrees a player turns the picture: the display matrix (or the old `rotate` tag)."""
    for side in video.get("side_data_list") or []:
        if isinstance(side, dict) and "rotation" in side:
            try:
                return round(float(side["rotation"]))
            except (TypeError, ValueError, OverflowError):
                return 0
    try:
        return int((video.get("tags") or {}).get("rotate", 0))
    except (TypeError, ValueError):
        return 0


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
        raise ProbeError("probe_timeout", f"the video could not be decoded within {timeout:.0f} s; "
                         f"{CONVERT_EN}", {"seconds": f"{timeout:.0f}"}) from None
    if code != 0:
        log.info("ffmpeg could not decode %s: %s", path.name, _last_line(err))
        raise _unreadable()


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

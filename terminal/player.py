"""libvlc behind an asyncio face.

Every libvlc call runs on one dedicated thread; libvlc's events arrive on libvlc's own
threads and are handed to the event loop with `call_soon_threadsafe` and nothing else —
calling the player from inside an event callback deadlocks libvlc.

Watched time is media time that really played: the advance between consecutive
time-changed events counts only when it is a small forward step (at most `max_step`
seconds per unit of playback rate). A pause produces no advance; a seek or skip is a
jump, and the tracker forgets its position when asked to seek, so neither counts.
Media time that freezes while playing for `stall_seconds` is a stall.

`play()` takes only a `VerifiedMedia`: bytes the cache hashed just before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import vlc

from terminal import constants as k
from terminal.cache import VerifiedMedia

log = logging.getLogger(__name__)

T = TypeVar("T")
PlayState = Literal["playing", "paused", "buffering", "stopped", "error"]


@dataclass
class PlayStats:
    sha256: str
    watched_seconds: float = 0.0
    stalls: int = 0
    errors: int = 0
    ended: bool = False  # reached the end (as opposed to stopped or failed)
    position_seconds: float = 0.0


@dataclass
class _Track:
    """Turns time-changed events into watched seconds (runs on the event loop)."""

    max_step: float
    last: float | None = 0.0
    last_advance: float = field(default_factory=time.monotonic)

    def advance(self, t: float, rate: float) -> float:
        gained = 0.0
        if self.last is not None:
            step = t - self.last
            if 0 < step <= self.max_step * max(1.0, rate):
                gained = step
        if self.last is None or t != self.last:
            self.last_advance = time.monotonic()
        self.last = t
        return gained


class Player:
    def __init__(
        self, *, headless: bool = False, rate: float = 1.0, extra_args: tuple[str, ...] = (),
        max_step: float = k.MAX_STEP_SECONDS, stall_seconds: float = k.STALL_SECONDS,
    ) -> None:
        self._args = ["--quiet", "--no-video-title-show", "--no-stats", *extra_args]
        if headless:
            self._args += ["--vout=dummy", "--aout=dummy"]
        else:
            # CJK glyphs for the overlay; fonts-wqy-zenhei is installed on every box
            self._args += ["--fullscreen", "--freetype-font=WenQuanYi Zen Hei"]
        self._rate = rate
        self._max_step = max_step
        self._stall_seconds = stall_seconds
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="libvlc")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._instance: Any = None
        self._mp: Any = None
        self._track = _Track(max_step)
        self._done: asyncio.Event = asyncio.Event()
        self.stats: PlayStats | None = None
        self.state: PlayState = "stopped"
        self.duration = 0.0
        self.played: list[str] = []  # sha256 of every item given to libvlc, in order
        # Which media events belong to: bumped on the loop per item, copied on the libvlc
        # thread just before the media is set, so a late event of the last item is ignored.
        self._generation = 0
        self._thread_generation = 0
        self.listeners: list[Callable[[], None]] = []
        self.volume = 100
        self.xwindow = 0  # an X window libvlc draws into (the TV interface's video frame)

    async def __aenter__(self) -> Player:
        await self.async_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.async_close()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def async_open(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._call(self._create)

    def _create(self) -> None:
        self._instance = vlc.Instance(*self._args)
        if self._instance is None:
            raise RuntimeError("libvlc could not start (is VLC installed?)")
        self._mp = self._instance.media_player_new()
        # keys and the mouse belong to the TV interface's window, not to the video inside it
        self._mp.video_set_key_input(False)
        self._mp.video_set_mouse_input(False)
        events = self._mp.event_manager()
        for kind, name in (
            (vlc.EventType.MediaPlayerTimeChanged, "time"),
            (vlc.EventType.MediaPlayerEndReached, "end"),
            (vlc.EventType.MediaPlayerEncounteredError, "error"),
            (vlc.EventType.MediaPlayerPlaying, "playing"),
            (vlc.EventType.MediaPlayerPaused, "paused"),
            (vlc.EventType.MediaPlayerStopped, "stopped"),
            (vlc.EventType.MediaPlayerBuffering, "buffering"),
        ):
            events.event_attach(kind, self._from_libvlc, name)

    def _from_libvlc(self, event: Any, name: str) -> None:
        # libvlc's thread: read the event, hand it over, touch nothing else
        value = event.u.new_time if name == "time" else None
        generation = self._thread_generation
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._on_event, name, value, generation)

    def _on_event(self, name: str, value: int | None, generation: int) -> None:
        stats = self.stats
        if stats is None or generation != self._generation:
            return
        if name == "time" and value is not None:
            t = value / 1000
            stats.watched_seconds += self._track.advance(t, self._rate)
            stats.position_seconds = t
        elif name == "playing":
            self.state = "playing"
            self._track.last_advance = time.monotonic()
        elif name == "paused":
            self.state = "paused"
        elif name == "buffering" and self.state != "paused":
            self._track.last_advance = max(self._track.last_advance, time.monotonic() - 0.1)
        elif name == "end":
            # the last stretch after the final time event, if it is a small step
            if self._track.last is not None and self.duration > self._track.last:
                stats.watched_seconds += self._track.advance(self.duration, self._rate)
            stats.ended = True
            self.state = "stopped"
            self._done.set()
        elif name == "error":
            stats.errors += 1
            self.state = "error"
            log.error("libvlc could not play %s", stats.sha256[:12])
            self._done.set()
        elif name == "stopped":
            self.state = "stopped"
            self._done.set()
        for listener in self.listeners:
            listener()

    async def play(self, media: VerifiedMedia) -> PlayStats:
        """Play one verified item to its end (or until stopped); returns its telemetry."""
        if not isinstance(media, VerifiedMedia):
            raise TypeError("the player only takes media the cache has verified")
        self.stats = stats = PlayStats(sha256=media.sha256)
        self._track = _Track(self._max_step)
        self.duration = media.duration
        self._done = asyncio.Event()
        self.played.append(media.sha256)
        self.state = "buffering"
        self._generation += 1
        await self._call(self._start, str(media.path), self._rate, self._generation)
        watchdog = asyncio.create_task(self._watch_stalls(stats))
        try:
            await self._done.wait()
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            await self._call(self._mp.stop)
            self.state = "stopped"
        stats.watched_seconds = round(stats.watched_seconds, 3)
        return stats

    def _start(self, path: str, rate: float, generation: int) -> None:
        self._thread_generation = generation
        if self.xwindow:
            self._mp.set_xwindow(self.xwindow)
        self._mp.set_media(self._instance.media_new_path(path))
        self._mp.play()
        if rate != 1.0:
            self._mp.set_rate(rate)

    async def _watch_stalls(self, stats: PlayStats) -> None:
        stalled = False
        while True:
            await asyncio.sleep(self._stall_seconds / 4)
            frozen = time.monotonic() - self._track.last_advance >= self._stall_seconds
            if self.state == "playing" and frozen and not stalled:
                stats.stalls += 1
                log.warning("playback of %s stalled at %.1f s", stats.sha256[:12], stats.position_seconds)
            stalled = self.state == "playing" and frozen

    async def pause(self) -> None:
        await self._call(self._mp.set_pause, 1)

    async def resume(self) -> None:
        await self._call(self._mp.set_pause, 0)

    async def seek(self, seconds: float) -> None:
        self._track.last = None  # the jump must not count; counting resumes from the new place
        await self._call(self._mp.set_time, int(seconds * 1000))

    async def toggle_pause(self) -> None:
        await self._call(self._mp.pause)

    async def set_volume(self, level: int) -> None:
        self.volume = max(0, min(200, level))
        await self._call(self._mp.audio_set_volume, self.volume)

    async def overlay(self, text: str | None) -> None:
        """Draw `text` over the video with libvlc's marquee (its own overlay); None hides it."""
        await self._call(self._marquee, text)

    def _marquee(self, text: str | None) -> None:
        m, opt = self._mp, vlc.VideoMarqueeOption
        if text is None:
            m.video_set_marquee_int(opt.Enable, 0)
            return
        # the marquee is drawn in the video's own pixels: size it to the picture, not the TV
        try:
            height = int(m.video_get_size(0)[1]) or 1080
        except Exception:  # no video track (yet): a 1080p picture
            height = 1080
        m.video_set_marquee_int(opt.Enable, 1)
        m.video_set_marquee_int(opt.Size, max(10, height // 26))
        m.video_set_marquee_int(opt.Color, 0xFFFFFF)
        m.video_set_marquee_int(opt.Opacity, 255)
        m.video_set_marquee_int(opt.Position, 8 | 1)  # bottom left
        m.video_set_marquee_int(opt.X, height // 30)
        m.video_set_marquee_int(opt.Y, height // 30)
        m.video_set_marquee_int(opt.Timeout, 0)
        m.video_set_marquee_string(opt.Text, text)

    async def set_rate(self, rate: float) -> None:
        self._rate = rate
        await self._call(self._mp.set_rate, rate)

    async def stop(self) -> None:
        await self._call(self._mp.stop)
        self._done.set()

    async def async_close(self) -> None:
        if self._mp is not None:
            await self._call(self._release)
        self._thread.shutdown(wait=True)
        self._loop = None

    def _release(self) -> None:
        self._mp.stop()
        self._mp.release()
        self._instance.release()
        self._mp = self._instance = None

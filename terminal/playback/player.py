"""libvlc behind an asyncio face, in a child process that lives only while a session plays.

libvlc (its plugins, decoders, picture pools, and the Mesa libraries its video probing
loads) holds about 200 MiB and gives little of it back when released, so it never runs
in the daemon: the first `play()` starts `python -m terminal.playback.player_child`, and
`async_close()` (the session's end) ends it, so the daemon returns to its own size.
Daemon and child talk over a socket pair with the typed messages of
`terminal.playback.player_wire`; every command is answered once libvlc has run it.
libvlc's events come back as messages and are handled on the event loop.

Watched time is media time that really played, counted here from the child's
time-changed events: the advance between consecutive events counts only when it is a
small forward step (at most `max_step` seconds per unit of playback rate). A pause
produces no advance; a seek or skip is a jump, and the tracker forgets its position when
asked to seek, so neither counts. Media time that freezes while playing for
`stall_seconds` is a stall.

A child that dies (crash, kill -9) or stops answering for `command_timeout` seconds
ends the item at once with what was counted so far, and `PlayStats.lost` says why;
the session then ends (`terminal.playback.sessions`). Commands to a lost child do nothing.

`play()` takes only a `VerifiedMedia`: bytes the cache hashed just before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from terminal import constants as k
from terminal.playback import player_wire as w
from terminal.storage.cache import VerifiedMedia

log = logging.getLogger(__name__)

PlayState = Literal["playing", "paused", "buffering", "stopped", "error"]
CLOSE_TIMEOUT = 5.0  # seconds a closing child gets to release libvlc before it is killed


@dataclass
class PlayStats:
    sha256: str
    watched_seconds: float = 0.0
    stalls: int = 0
    errors: int = 0
    ended: bool = False  # reached the end (as opposed to stopped or failed)
    position_seconds: float = 0.0
    lost: str = ""  # the player process died or hung during this item: why, in words


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
        command_timeout: float = k.PLAYER_COMMAND_TIMEOUT,
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
        self._command_timeout = command_timeout
        self._proc: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[str]] = {}
        self._n = 0
        self._closing = False
        self.lost = ""  # why the child ended unasked; "" while it runs or after a clean close
        self._track = _Track(max_step)
        self._done: asyncio.Event = asyncio.Event()
        self.stats: PlayStats | None = None
        self.state: PlayState = "stopped"
        self.duration = 0.0
        self.played: list[str] = []  # sha256 of every item given to libvlc, in order
        # Which media events belong to: bumped per item and sent with it, so a late event
        # of the last item is ignored.
        self._generation = 0
        self.listeners: list[Callable[[], None]] = []
        self.volume = 100
        self.xwindow = 0  # an X window libvlc draws into (the TV interface's video frame)

    async def __aenter__(self) -> Player:
        await self.async_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.async_close()

    @property
    def pid(self) -> int | None:
        """The libvlc child's process id while one is attached, else None."""
        alive = self._proc is not None and not self._closing and not self.lost
        return self._proc.pid if alive and self._proc is not None else None

    async def async_open(self) -> None:
        """Nothing starts here: the child starts with the first `play()`, so a session that
        never plays (a refused sign-in, nothing ready) never loads libvlc."""

    # --- the child --------------------------------------------------------------------

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "terminal.playback.player_child", str(theirs.fileno()),
                pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL,
            )
        except OSError as e:
            ours.close()
            self._lose(f"播放器无法启动 / the player process could not start: {e}")
            return
        finally:
            theirs.close()
        reader, self._writer = await asyncio.open_connection(sock=ours)
        self._reading = asyncio.create_task(self._read(reader, self._proc), name="player-child")
        log.info("player process %d started", self._proc.pid)
        # a first start on a loaded box scans libvlc's plugins: give it longer than a command
        error = await self._call(w.Open, args=self._args, timeout=max(30.0, self._command_timeout))
        if error:
            self._lose(f"libvlc 无法启动 / libvlc could not start: {error}")

    async def _read(self, reader: asyncio.StreamReader, proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, msgspec.DecodeError):
            while True:
                (size,) = w.HEADER.unpack(await reader.readexactly(w.HEADER.size))
                if size > w.MAX_FRAME:
                    break
                message = w.reply_decoder.decode(await reader.readexactly(size))
                if isinstance(message, w.Done):
                    future = self._pending.pop(message.n, None)
                    if future is not None and not future.done():
                        future.set_result(message.error)
                else:
                    self._on_event(message.name, message.time_ms, message.generation)
        # the stream ended: the child exited, or is about to
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                code = await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            code = await proc.wait()
        if not self._closing:
            self._lose(f"播放器进程意外退出 / the player process ended unexpectedly (exit status {code})")
        self._answer_all("gone")

    def _answer_all(self, error: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_result(error)

    def _lose(self, reason: str) -> None:
        """The child is gone (or must be): end the item with what was counted so far."""
        if self.lost:
            return
        self.lost = reason
        log.error("%s", reason)
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        self._answer_all(reason)
        stats = self.stats
        if stats is not None and not self._done.is_set():
            stats.errors += 1
            stats.lost = reason
            self.state = "error"
            self._done.set()
        for listener in self.listeners:
            listener()

    async def _call(self, command: Callable[..., w.Command], *, timeout: float | None = None,
                    **fields: Any) -> str:
        """Send a command and wait until the child has run it; libvlc's refusal in words, or
        "" when done. Does nothing once the child is lost or closed."""
        if self._writer is None or self.lost or self._writer.is_closing():
            return self.lost or "closed"
        self._n += 1
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[self._n] = future
        self._writer.write(w.frame(command(n=self._n, **fields)))
        try:
            async with asyncio.timeout(timeout or self._command_timeout):
                return await future
        except TimeoutError:
            self._lose(f"播放器没有响应 / the player process did not answer within "
                       f"{timeout or self._command_timeout:.0f} s (libvlc hung); it was stopped")
            return self.lost

    async def _command(self, command: Callable[..., w.Command], **fields: Any) -> None:
        error = await self._call(command, **fields)
        if error and not self.lost:
            log.warning("libvlc refused %s: %s", command.__name__, error)

    # --- events, on the event loop ----------------------------------------------------

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

    # --- playing ----------------------------------------------------------------------

    async def play(self, media: VerifiedMedia) -> PlayStats:
        """Play one verified item to its end (or until stopped); returns its telemetry.
        When the player process is lost, returns at once with `lost` set."""
        if not isinstance(media, VerifiedMedia):
            raise TypeError("the player only takes media the cache has verified")
        self.stats = stats = PlayStats(sha256=media.sha256)
        self._track = _Track(self._max_step)
        self.duration = media.duration
        self._done = asyncio.Event()
        self.state = "buffering"
        self._generation += 1
        if self._proc is None and not self.lost:
            await self._spawn()
        if self.lost:
            stats.errors += 1
            stats.lost = self.lost
            self.state = "error"
            return stats
        self.played.append(media.sha256)
        error = await self._call(w.Play, path=str(media.path), rate=self._rate, xwindow=self.xwindow,
                                 generation=self._generation)
        if error and not self.lost:
            stats.errors += 1
            self.state = "error"
            log.error("libvlc could not start %s: %s", media.sha256[:12], error)
            self._done.set()
        watchdog = asyncio.create_task(self._watch_stalls(stats))
        try:
            await self._done.wait()
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            await self._command(w.Stop)
            self.state = "error" if self.lost else "stopped"
        stats.watched_seconds = round(stats.watched_seconds, 3)
        return stats

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
        await self._command(w.Pause, on=True)

    async def resume(self) -> None:
        await self._command(w.Pause, on=False)

    async def seek(self, seconds: float) -> None:
        self._track.last = None  # the jump must not count; counting resumes from the new place
        await self._command(w.Seek, ms=int(seconds * 1000))

    async def toggle_pause(self) -> None:
        await self._command(w.TogglePause)

    async def set_volume(self, level: int) -> None:
        self.volume = max(0, min(200, level))
        await self._command(w.Volume, level=self.volume)

    async def overlay(self, text: str | None) -> None:
        """Draw `text` over the video with libvlc's marquee (its own overlay); None hides it."""
        await self._command(w.Marquee, text=text)

    async def set_rate(self, rate: float) -> None:
        self._rate = rate
        await self._command(w.Rate, rate=rate)

    async def stop(self) -> None:
        await self._command(w.Stop)
        self._done.set()

    async def async_close(self) -> None:
        """Release libvlc and wait for the child to exit (killed after `CLOSE_TIMEOUT`)."""
        proc = self._proc
        self._closing = True  # before Close: the child's exit that follows is no loss
        if proc is not None and not self.lost:
            await self._command(w.Close)
        if proc is not None:
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await proc.wait()
            except TimeoutError:
                log.error("player process %d did not exit after closing; killed", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            log.info("player process %d exited (status %s)", proc.pid, proc.returncode)
        if self._reading is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        self._writer = None

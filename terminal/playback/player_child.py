"""The libvlc child: one process per session, started by
`terminal.playback.player.Player`.

    python -m terminal.playback.player_child FD

FD is this process's end of a socket pair with the daemon (`terminal.playback.player_wire`).
The main thread reads commands and runs every libvlc call, in order, answering each
with `Done`; libvlc's events arrive on libvlc's own threads, which only queue an
`Event` (calling the player from inside an event callback deadlocks libvlc); one
writer thread sends what is queued. The child exits after `Close`, and at once when
the daemon's end closes (the daemon died): libvlc never outlives the session.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import sys
import threading
from typing import Any

import vlc

from terminal.playback import player_wire as w

_EVENTS: tuple[tuple[str, w.EventName], ...] = (
    ("MediaPlayerTimeChanged", "time"),
    ("MediaPlayerEndReached", "end"),
    ("MediaPlayerEncounteredError", "error"),
    ("MediaPlayerPlaying", "playing"),
    ("MediaPlayerPaused", "paused"),
    ("MediaPlayerStopped", "stopped"),
    ("MediaPlayerBuffering", "buffering"),
)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Child:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.out: queue.Queue[bytes | None] = queue.Queue()
        self.instance: Any = None
        self.mp: Any = None
        self._marquee_on = False  # the marquee filter is enabled on the current video
        self.generation = 0

    def send(self, message: w.Reply) -> None:
        self.out.put(w.frame(message))

    def _writer(self) -> None:
        while (data := self.out.get()) is not None:
            try:
                self.sock.sendall(data)
            except OSError:
                os._exit(0)  # the daemon is gone

    def _from_libvlc(self, event: Any, name: w.EventName) -> None:
        # libvlc's thread: read the event, queue it, touch nothing else
        value = int(event.u.new_time) if name == "time" else None
        self.send(w.Event(name=name, generation=self.generation, time_ms=value))

    def run(self) -> None:
        writer = threading.Thread(target=self._writer, name="player-writer", daemon=True)
        writer.start()
        while True:
            header = _read_exactly(self.sock, w.HEADER.size)
            if header is None:
                os._exit(0)  # the daemon's end closed: it died or gave up on us
            (size,) = w.HEADER.unpack(header)
            body = _read_exactly(self.sock, size) if size <= w.MAX_FRAME else None
            if body is None:
                os._exit(1)
            command = w.command_decoder.decode(body)
            error = ""
            try:
                self.handle(command)
            except Exception as e:  # python-vlc raises many kinds; the daemon decides what it means
                error = f"{type(e).__name__}: {e}"
            self.send(w.Done(n=command.n, error=error))
            if isinstance(command, w.Close):
                self.out.put(None)
                writer.join(timeout=5)
                return

    def handle(self, c: w.Command) -> None:
        if isinstance(c, w.Open):
            self.instance = vlc.Instance(*c.args)
            if self.instance is None:
                raise RuntimeError("libvlc could not start (is VLC installed?)")
            self.mp = self.instance.media_player_new()
            # keys and the mouse belong to the TV interface's window, not to the video inside it
            self.mp.video_set_key_input(False)
            self.mp.video_set_mouse_input(False)
            events = self.mp.event_manager()
            for kind, name in _EVENTS:
                events.event_attach(getattr(vlc.EventType, kind), self._from_libvlc, name)
            return
        mp = self.mp
        if mp is None:
            raise RuntimeError("libvlc is not open")
        if isinstance(c, w.Play):
            self._marquee_on = False  # a new item gets a new video output
            self.generation = c.generation
            if c.xwindow:
                mp.set_xwindow(c.xwindow)
            mp.set_media(self.instance.media_new_path(c.path))
            mp.play()
            if c.rate != 1.0:
                mp.set_rate(c.rate)
        elif isinstance(c, w.Pause):
            mp.set_pause(1 if c.on else 0)
        elif isinstance(c, w.TogglePause):
            mp.pause()
        elif isinstance(c, w.Seek):
            mp.set_time(c.ms)
        elif isinstance(c, w.Volume):
            mp.audio_set_volume(c.level)
        elif isinstance(c, w.Rate):
            mp.set_rate(c.rate)
        elif isinstance(c, w.Marquee):
            self.marquee(c.text)
        elif isinstance(c, w.Stop):
            mp.stop()
        elif isinstance(c, w.Close):
            mp.stop()
            mp.release()
            self.instance.release()
            self.mp = self.instance = None

    def marquee(self, text: str | None) -> None:
        m, opt = self.mp, vlc.VideoMarqueeOption
        if text is None:
            m.video_set_marquee_int(opt.Enable, 0)
            self._marquee_on = False
            return
        if not self._marquee_on:
            # Enabling (again) rebuilds libvlc's marquee filter, which draws nothing until
            # its first refresh: the overlay is refreshed twice a second, so enable it once
            # and from then on change only the words. Enabling before the video output
            # exists does nothing, so it counts only once there is one.
            if not m.has_vout():
                return
            # the marquee is drawn in the video's own pixels: size it to the picture, not the TV
            try:
                height = int(m.video_get_size(0)[1]) or 1080
            except Exception:  # no video track (yet): a 1080p picture
                height = 1080
            m.video_set_marquee_int(opt.Enable, 1)
            m.video_set_marquee_int(opt.Size, max(10, height // 20))  # readable from four metres
            m.video_set_marquee_int(opt.Color, 0xFFFFFF)
            m.video_set_marquee_int(opt.Opacity, 255)
            m.video_set_marquee_int(opt.Position, 8 | 1)  # bottom left
            m.video_set_marquee_int(opt.X, height // 30)
            m.video_set_marquee_int(opt.Y, height // 30)
            m.video_set_marquee_int(opt.Timeout, 0)
            m.video_set_marquee_int(opt.Refresh, 200)  # ms: the words follow within a frame or so
            self._marquee_on = True
        m.video_set_marquee_string(opt.Text, text)

def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m terminal.playback.player_child FD (started by the terminal daemon)",
              file=sys.stderr)
        return 2
    # Ctrl-C at a shell reaches the whole process group: the daemon decides when we stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    Child(socket.socket(fileno=int(argv[0]))).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

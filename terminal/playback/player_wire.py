"""The messages between the daemon's `Player` and its libvlc child
(`terminal.playback.player_child`).

One socket pair per child; every message is a msgspec Struct, MessagePack-encoded and
framed by a 4-byte big-endian length. Commands carry a number `n`; the child answers
each with `Done(n)` (and `error` when libvlc refused it) after running it, in order.
libvlc's events travel as `Event`, tagged with the generation of the item they belong
to (`Play.generation`), so a late event of the previous item can be told apart.
"""

from __future__ import annotations

import struct
from typing import Literal

import msgspec

MAX_FRAME = 1 << 20  # no message comes near this; a bigger length means a broken stream
HEADER = struct.Struct(">I")

EventName = Literal["time", "end", "error", "playing", "paused", "stopped", "buffering"]


class Open(msgspec.Struct, tag=True, frozen=True):
    """Create the libvlc instance and its media player with these arguments."""

    n: int
    args: list[str]


class Play(msgspec.Struct, tag=True, frozen=True):
    """Play the file at `path` (bytes the daemon's cache has just verified)."""

    n: int
    path: str
    rate: float
    xwindow: int  # X window to draw into; 0: libvlc's own
    generation: int


class Pause(msgspec.Struct, tag=True, frozen=True):
    n: int
    on: bool  # True pauses, False resumes


class TogglePause(msgspec.Struct, tag=True, frozen=True):
    n: int


class Seek(msgspec.Struct, tag=True, frozen=True):
    n: int
    ms: int  # media time to jump to, milliseconds


class Volume(msgspec.Struct, tag=True, frozen=True):
    n: int
    level: int  # 0..200, percent


class Rate(msgspec.Struct, tag=True, frozen=True):
    n: int
    rate: float


class Marquee(msgspec.Struct, tag=True, frozen=True):
    """libvlc's marquee over the video; None hides it."""

    n: int
    text: str | None


class Stop(msgspec.Struct, tag=True, frozen=True):
    n: int


class Close(msgspec.Struct, tag=True, frozen=True):
    """Release libvlc and exit."""

    n: int


Command = Open | Play | Pause | TogglePause | Seek | Volume | Rate | Marquee | Stop | Close


class Done(msgspec.Struct, tag=True, frozen=True):
    n: int
    error: str = ""


class Event(msgspec.Struct, tag=True, frozen=True):
    name: EventName
    generation: int
    time_ms: int | None = None  # for "time": the media time reached


Reply = Done | Event

_encoder = msgspec.msgpack.Encoder()
command_decoder = msgspec.msgpack.Decoder(Command)
reply_decoder = msgspec.msgpack.Decoder(Reply)


def frame(message: Command | Reply) -> bytes:
    body = _encoder.encode(message)
    return HEADER.pack(len(body)) + body

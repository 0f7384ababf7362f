"""One input layer for every remote: key events become a fixed set of commands.

Two sources feed it: the X server's key events (Tk bindings; USB and IR remotes in
keyboard mode arrive this way) and Linux input devices read directly (`/dev/input/event*`,
the kernel's `struct input_event`: CEC bridged to input events, remotes X does not see).
Both are named as raw keys — `x:<keysym>` and `ev:<code>` — looked up first in the
mapping "learn this remote" stored, then in the defaults below.

OK, Select, Enter and keypad Enter all mean OK; Back, Exit, Escape and Backspace all
mean Back. A held key's repeats are dropped, except for moving, seeking and volume,
which repeat at most every `REPEAT_EVERY` seconds. The same command from both sources
within `SAME_PRESS` seconds (one key seen by X and by the device) counts once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
import threading
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path

import msgspec

log = logging.getLogger(__name__)

REPEAT_EVERY = 0.25  # seconds between accepted repeats of a held arrow or volume key
SAME_PRESS = 0.04  # seconds: the same command from X and from the device is one press


class Command(StrEnum):
    UP = "up"
    DOWN = "down"
    LEFT = "left"
    RIGHT = "right"
    OK = "ok"
    BACK = "back"
    HOME = "home"
    MENU = "menu"
    PLAY_PAUSE = "play_pause"
    STOP = "stop"
    NEXT = "next"
    SEEK_FWD = "seek_fwd"
    SEEK_BACK = "seek_back"
    VOL_UP = "vol_up"
    VOL_DOWN = "vol_down"
    RED = "red"
    GREEN = "green"
    YELLOW = "yellow"
    BLUE = "blue"
    D0 = "0"
    D1 = "1"
    D2 = "2"
    D3 = "3"
    D4 = "4"
    D5 = "5"
    D6 = "6"
    D7 = "7"
    D8 = "8"
    D9 = "9"

    @property
    def digit(self) -> int | None:
        return int(self.value) if self.value.isdigit() else None


DIGITS = [Command(str(n)) for n in range(10)]
# held down, these repeat (slowly); every other command counts once per press
REPEATABLE = frozenset({Command.UP, Command.DOWN, Command.LEFT, Command.RIGHT, Command.SEEK_FWD,
                        Command.SEEK_BACK, Command.VOL_UP, Command.VOL_DOWN})

# X keysyms (as Tk names them)
KEYSYMS: dict[str, Command] = {
    "Up": Command.UP, "Down": Command.DOWN, "Left": Command.LEFT, "Right": Command.RIGHT,
    "KP_Up": Command.UP, "KP_Down": Command.DOWN, "KP_Left": Command.LEFT, "KP_Right": Command.RIGHT,
    "Return": Command.OK, "KP_Enter": Command.OK, "Select": Command.OK, "XF86Select": Command.OK,
    "Escape": Command.BACK, "BackSpace": Command.BACK, "XF86Back": Command.BACK, "Cancel": Command.BACK,
    "XF86Close": Command.BACK, "XF86Exit": Command.BACK,
    "Home": Command.HOME, "XF86HomePage": Command.HOME, "Menu": Command.MENU, "XF86MenuKB": Command.MENU,
    "XF86AudioPlay": Command.PLAY_PAUSE, "XF86AudioPause": Command.PLAY_PAUSE, "space": Command.PLAY_PAUSE,
    "XF86AudioStop": Command.STOP, "XF86AudioNext": Command.NEXT,
    "XF86AudioForward": Command.SEEK_FWD, "XF86AudioRewind": Command.SEEK_BACK,
    "Next": Command.SEEK_FWD, "Prior": Command.SEEK_BACK,  # page down / page up
    "XF86AudioRaiseVolume": Command.VOL_UP, "XF86AudioLowerVolume": Command.VOL_DOWN,
    "plus": Command.VOL_UP, "KP_Add": Command.VOL_UP, "minus": Command.VOL_DOWN,
    "KP_Subtract": Command.VOL_DOWN,
    "F1": Command.RED, "F2": Command.GREEN, "F3": Command.YELLOW, "F4": Command.BLUE,
    "XF86Red": Command.RED, "XF86Green": Command.GREEN, "XF86Yellow": Command.YELLOW,
    "XF86Blue": Command.BLUE,
    **{str(n): Command(str(n)) for n in range(10)},
    **{f"KP_{n}": Command(str(n)) for n in range(10)},
}

# Linux input event codes (linux/input-event-codes.h)
EVDEV_CODES: dict[int, Command] = {
    103: Command.UP, 108: Command.DOWN, 105: Command.LEFT, 106: Command.RIGHT,
    28: Command.OK, 96: Command.OK, 352: Command.OK, 353: Command.OK,  # ENTER KPENTER OK SELECT
    1: Command.BACK, 14: Command.BACK, 158: Command.BACK, 174: Command.BACK,  # ESC BACKSPACE BACK EXIT
    102: Command.HOME, 172: Command.HOME, 139: Command.MENU, 357: Command.MENU,  # HOME HOMEPAGE MENU OPTION
    164: Command.PLAY_PAUSE, 207: Command.PLAY_PAUSE, 119: Command.PLAY_PAUSE, 201: Command.PLAY_PAUSE,
    166: Command.STOP, 128: Command.STOP, 163: Command.NEXT, 407: Command.NEXT,
    208: Command.SEEK_FWD, 168: Command.SEEK_BACK,
    115: Command.VOL_UP, 114: Command.VOL_DOWN,
    398: Command.RED, 399: Command.GREEN, 400: Command.YELLOW, 401: Command.BLUE,
    11: Command.D0, **{1 + n: Command(str(n)) for n in range(1, 10)},  # KEY_1 = 2 … KEY_9 = 10
    82: Command.D0, 79: Command.D1, 80: Command.D2, 81: Command.D3, 75: Command.D4,  # keypad
    76: Command.D5, 77: Command.D6, 71: Command.D7, 72: Command.D8, 73: Command.D9,
    **{0x200 + n: Command(str(n)) for n in range(10)},  # KEY_NUMERIC_0 … 9 (remotes)
}

# The order "learn this remote" asks for the keys, with the words it asks with.
LEARN_ORDER: list[tuple[Command, str]] = [
    (Command.OK, "确定"), (Command.BACK, "返回"), (Command.UP, "上"), (Command.DOWN, "下"),
    (Command.LEFT, "左"), (Command.RIGHT, "右"), (Command.HOME, "主页"), (Command.MENU, "菜单"),
    (Command.PLAY_PAUSE, "播放/暂停"), (Command.STOP, "停止"), (Command.NEXT, "下一部"),
    (Command.VOL_UP, "音量加"), (Command.VOL_DOWN, "音量减"),
    *[(d, f"数字 {d.value}") for d in [*DIGITS[1:], DIGITS[0]]],
    (Command.RED, "红色"), (Command.GREEN, "绿色"), (Command.YELLOW, "黄色"), (Command.BLUE, "蓝色"),
]


def x_key(keysym: str) -> str:
    return f"x:{keysym}"


def ev_key(code: int) -> str:
    return f"ev:{code}"


class KeyMap:
    """Raw key name → command: the learned mapping (kept in `path`) over the defaults."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.learned: dict[str, Command] = {}
        if path is not None and path.exists():
            try:
                raw = msgspec.json.decode(path.read_bytes(), type=dict[str, str])
                self.learned = {k: Command(v) for k, v in raw.items() if v in Command._value2member_map_}
            except (OSError, msgspec.DecodeError) as e:
                log.warning("the learned remote in %s could not be read (%s); using the defaults", path, e)

    def lookup(self, raw: str) -> Command | None:
        if raw in self.learned:
            return self.learned[raw]
        kind, _, name = raw.partition(":")
        if kind == "x":
            return KEYSYMS.get(name)
        if kind == "ev" and name.isdigit():
            return EVDEV_CODES.get(int(name))
        return None

    def save(self, learned: dict[str, Command]) -> None:
        """Keep a learned mapping (written whole, then renamed: never half a file)."""
        self.learned = dict(learned)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode({k: v.value for k, v in learned.items()}))
        os.replace(tmp, self.path)


class RepeatFilter:
    """Drops held-key repeat storms and the second copy of a press seen by two sources."""

    def __init__(self, repeat_every: float = REPEAT_EVERY, same_press: float = SAME_PRESS) -> None:
        self._every = repeat_every
        self._same = same_press
        self._last: dict[Command, tuple[float, str]] = {}

    def accept(self, command: Command, now: float, *, repeat: bool, source: str = "x") -> bool:
        """`now` in seconds (monotonic); `repeat` is true for the auto-repeat of a held key."""
        last = self._last.get(command)
        if repeat:
            if command not in REPEATABLE or (last is not None and now - last[0] < self._every):
                return False
        elif last is not None and last[1] != source and now - last[0] < self._same:
            return False
        self._last[command] = (now, source)
        return True


# --- Linux input devices ------------------------------------------------------------------

EV_KEY = 1
_EVENT = struct.Struct("llHHi")  # struct input_event: timeval, type, code, value


def keyboard_devices(proc: Path = Path("/proc/bus/input/devices")) -> list[Path]:
    """Input devices that send keys (their handlers include `kbd`), from /proc."""
    try:
        text = proc.read_text()
    except OSError:
        return []
    found = []
    for block in text.split("\n\n"):
        handlers = re.search(r"^H: Handlers=(.*)$", block, re.M)
        if handlers and "kbd" in handlers.group(1).split():
            found += [Path("/dev/input") / h for h in handlers.group(1).split() if h.startswith("event")]
    return found


def parse_events(data: bytes) -> Iterable[tuple[int, int]]:
    """(code, value) of each key event in `data` (whole `input_event` structs): value 1 is a
    press, 2 an auto-repeat, 0 a release."""
    for offset in range(0, len(data) - _EVENT.size + 1, _EVENT.size):
        _sec, _usec, kind, code, value = _EVENT.unpack_from(data, offset)
        if kind == EV_KEY:
            yield code, value


class DeviceReader:
    """Reads key events from input devices on a thread each; `on_key(raw, repeat)` is called
    from those threads for presses and repeats. Devices that cannot be opened are skipped
    (logged), so a box without them runs on X keys alone."""

    def __init__(self, paths: Iterable[Path], on_key: Callable[[str, bool], None]) -> None:
        self._on_key = on_key
        self._stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.opened: list[Path] = []
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as e:
                log.info("input device %s not used: %s", path, e)
                continue
            self.opened.append(path)
            t = threading.Thread(target=self._read, args=(fd,), name=f"input-{path.name}", daemon=True)
            t.start()
            self.threads.append(t)

    def _read(self, fd: int) -> None:
        pending = b""
        try:
            while not self._stop.is_set():
                chunk = os.read(fd, _EVENT.size * 16)
                if not chunk:
                    return
                pending += chunk
                whole = len(pending) - len(pending) % _EVENT.size
                for code, value in parse_events(pending[:whole]):
                    if value in (1, 2):
                        self._on_key(ev_key(code), value == 2)
                pending = pending[whole:]
        except OSError as e:
            log.warning("an input device stopped: %s", e)
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        self._stop.set()

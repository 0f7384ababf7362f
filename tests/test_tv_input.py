"""One input layer for every remote: X key names and Linux input event codes map to one
command set (OK, Select, Enter and keypad Enter are OK; Back, Exit, Escape and Backspace
are Back); held-key repeat storms are dropped (arrows and volume repeat slowly); one
press seen by X and by the device counts once; a learned remote is kept in a file and
wins over the defaults; input devices are read as the kernel's `input_event` structs
(here through a FIFO, a real file the kernel streams the same way), and a device that
cannot be opened is skipped."""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

from terminal.interface.tv.keys import (
    Command,
    DeviceReader,
    KeyMap,
    RepeatFilter,
    ev_key,
    keyboard_devices,
    parse_events,
    x_key,
)


def test_every_ok_and_back_key_means_the_same() -> None:
    keys = KeyMap()
    for name in ("Return", "KP_Enter", "Select"):
        assert keys.lookup(x_key(name)) == Command.OK
    for name in ("Escape", "BackSpace", "XF86Back"):
        assert keys.lookup(x_key(name)) == Command.BACK
    for code in (28, 96, 352, 353):  # ENTER, KPENTER, OK, SELECT
        assert keys.lookup(ev_key(code)) == Command.OK
    for code in (1, 14, 158, 174):  # ESC, BACKSPACE, BACK, EXIT
        assert keys.lookup(ev_key(code)) == Command.BACK
    assert keys.lookup(x_key("KP_7")) == keys.lookup(ev_key(8)) == keys.lookup(ev_key(0x207)) == Command.D7
    assert keys.lookup(x_key("q")) is None


def test_held_key_storms_are_dropped() -> None:
    f = RepeatFilter(repeat_every=0.25)
    assert f.accept(Command.OK, 0.0, repeat=False)
    assert not any(f.accept(Command.OK, 0.03 * n, repeat=True) for n in range(1, 40))
    assert f.accept(Command.DOWN, 0.0, repeat=False)
    accepted = sum(f.accept(Command.DOWN, 0.03 * n, repeat=True) for n in range(1, 34))  # one second
    assert 3 <= accepted <= 4  # slowly, not 33 steps
    assert f.accept(Command.D1, 5.0, repeat=False) and f.accept(Command.D1, 5.2, repeat=False)  # "11"


def test_one_press_seen_by_x_and_by_the_device_counts_once() -> None:
    f = RepeatFilter(same_press=0.04)
    assert f.accept(Command.OK, 1.0, repeat=False, source="x")
    assert not f.accept(Command.OK, 1.01, repeat=False, source="device")
    assert f.accept(Command.OK, 1.5, repeat=False, source="device")


def test_a_learned_remote_is_kept_and_wins(tmp_path: Path) -> None:
    path = tmp_path / "remote-keys.json"
    KeyMap(path).save({x_key("a"): Command.OK, ev_key(28): Command.MENU})
    again = KeyMap(path)
    assert again.lookup(x_key("a")) == Command.OK
    assert again.lookup(ev_key(28)) == Command.MENU
    assert again.lookup(x_key("Return")) == Command.OK  # the defaults still apply
    path.write_text("{not json")
    assert KeyMap(path).lookup(x_key("a")) is None  # a damaged file: the defaults, no crash


def _event(kind: int, code: int, value: int) -> bytes:
    return struct.pack("llHHi", 1, 2, kind, code, value)


def test_input_device_events_become_presses(tmp_path: Path) -> None:
    fifo = tmp_path / "event7"
    os.mkfifo(fifo)
    got: list[tuple[str, bool]] = []

    def write() -> None:
        with open(fifo, "wb") as w:
            w.write(_event(4, 4, 0x70028) + _event(1, 28, 1) + _event(0, 0, 0))  # MSC_SCAN, ENTER, SYN
            w.flush()
            w.write(_event(1, 28, 2) + _event(1, 28, 0))  # auto-repeat, release
            w.write(_event(1, 103, 1)[:10])  # half a struct, then the device goes away

    writer = threading.Thread(target=write)
    writer.start()
    reader = DeviceReader([fifo, tmp_path / "missing"], lambda raw, repeat: got.append((raw, repeat)))
    writer.join(10)
    for t in reader.threads:
        t.join(10)  # the reader stops by itself at the end of the stream
        assert not t.is_alive()
    assert reader.opened == [fifo]  # the missing device is skipped, not fatal
    assert got == [(ev_key(28), False), (ev_key(28), True)]  # no release, no half event
    reader.close()


def test_parse_events_and_proc_devices(tmp_path: Path) -> None:
    data = _event(1, 2, 1) + _event(2, 0, 5) + _event(1, 2, 0)
    assert list(parse_events(data)) == [(2, 1), (2, 0)]
    proc = tmp_path / "devices"
    proc.write_text(
        'I: Bus=0003\nN: Name="IR remote"\nH: Handlers=sysrq kbd event3 leds\n\n'
        'I: Bus=0011\nN: Name="mouse"\nH: Handlers=mouse0 event4\n\n'
    )
    assert keyboard_devices(proc) == [Path("/dev/input/event3")]
    assert keyboard_devices(tmp_path / "none") == []

"""The TV interface: one full-screen Tk window on the box's X display.

Menus are drawn on a Tk canvas; during playback a plain black frame is raised over it
and libvlc, in the daemon, draws the video straight into that frame's X window (its id
goes with the start request), so one window owns the screen and nothing composites
over the video but libvlc's own marquee overlay.

Threads: Tk runs on the main thread and is the only one that touches widgets. The
daemon is asked on a worker thread (calls in order, one at a time) and polled for its
status on another; input devices are read on their own threads. All of them hand their
results to Tk through one queue, emptied every `PUMP_MS`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import tkinter as tk
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from tkinter import font as tkfont
from typing import Any

from terminal import sdnotify as systemd
from terminal.interface import control as ctl
from terminal.interface.tv.api import DaemonApi, DaemonDown
from terminal.interface.tv.keys import DeviceReader, KeyMap, RepeatFilter, x_key
from terminal.interface.tv.screens import COUNTY_TIME, Call, Entry, Ui, View

log = logging.getLogger(__name__)

PUMP_MS = 30
POLL_SECONDS = 1.0
ROSTER_SECONDS = 30.0
FONT = "WenQuanYi Zen Hei"
BG, BAND, FG, DIM = "#000000", "#0B2545", "#FFFFFF", "#B0B8C0"
FOCUS_BG, FOCUS_FG = "#FFD200", "#000000"
STYLE_COLOURS = {"": "#E8E8E8", "big": FG, "good": "#7CFC7C", "bad": "#FF8A80", "dim": DIM, "code": "#FFD200"}


class TvApp:
    def __init__(self, api: DaemonApi, keymap: KeyMap, *, size: tuple[int, int] = (1920, 1080),
                 kiosk: bool = True, devices: list[Path] | None = None) -> None:
        self.api = api
        self.keymap = keymap
        self.width, self.height = size
        self.root = tk.Tk(className="yuanjiao-tv")
        self.root.title("远教终端")
        self.root.configure(bg=BG, cursor="none")
        if kiosk:  # no window manager on the box: cover the screen ourselves
            self.root.overrideredirect(True)
        self.root.geometry(f"{self.width}x{self.height}+0+0")
        self.canvas = tk.Canvas(self.root, width=self.width, height=self.height, bg=BG,
                                highlightthickness=0, cursor="none")
        self.video = tk.Frame(self.root, bg="black", width=self.width, height=self.height)
        self.video.place(x=0, y=0, relwidth=1, relheight=1)
        self.canvas.place(x=0, y=0, relwidth=1, relheight=1)
        tk.Misc.tkraise(self.canvas)  # menus on top; the video frame is raised while playing
        self.root.update_idletasks()
        self.ui = Ui(xwindow=self.video.winfo_id())
        self.ui.open("home")
        self.fonts = {
            "title": tkfont.Font(family=FONT, size=-60, weight="bold"),
            "entry": tkfont.Font(family=FONT, size=-48),
            "focus": tkfont.Font(family=FONT, size=-48, weight="bold"),
            "group": tkfont.Font(family=FONT, size=-34),
            "big": tkfont.Font(family=FONT, size=-46, weight="bold"),
            "info": tkfont.Font(family=FONT, size=-38),
            "dim": tkfont.Font(family=FONT, size=-34),
            "code": tkfont.Font(family=FONT, size=-64, weight="bold"),
            "hint": tkfont.Font(family=FONT, size=-34),
            "message": tkfont.Font(family=FONT, size=-42, weight="bold"),
        }
        self.inbox: queue.Queue[tuple[str, Any, Any]] = queue.Queue()
        self.filter = RepeatFilter()
        self._held: set[str] = set()
        self._released: dict[str, int] = {}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tv-calls")
        self._stop = threading.Event()
        self._want_roster = threading.Event()
        self._want_roster.set()
        self._poller = threading.Thread(target=self._poll, name="tv-poll", daemon=True)
        self.root.bind_all("<KeyPress>", self._press)
        self.root.bind_all("<KeyRelease>", self._release)
        self.devices = DeviceReader(devices or [], self._device_key)
        self._shown_video = False
        self._last_watchdog = 0.0
        self._name = ""

    # --- running ----------------------------------------------------------------------

    def run(self) -> None:
        self._draw()
        self.root.focus_force()
        self._poller.start()
        self.root.after(PUMP_MS, self._pump)
        systemd.notify("READY=1")
        try:
            self.root.mainloop()
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        self.devices.close()
        self._worker.shutdown(wait=False, cancel_futures=True)

    def _poll(self) -> None:
        last_roster = 0.0
        while not self._stop.is_set():
            try:
                snap = self.api.status()
            except (DaemonDown, ValueError) as e:
                log.debug("daemon not answering: %s", e)
                snap = None
                self._want_roster.set()
            self.inbox.put(("snapshot", snap, None))
            due = self._want_roster.is_set() or time.monotonic() - last_roster > ROSTER_SECONDS
            if snap is not None and due:
                try:
                    self.inbox.put(("roster", self.api.roster(), None))
                    self._want_roster.clear()
                    last_roster = time.monotonic()
                except (DaemonDown, ValueError) as e:
                    log.debug("roster not read: %s", e)
            self._stop.wait(POLL_SECONDS)

    def _pump(self) -> None:
        changed = False
        try:
            while True:
                kind, a, b = self.inbox.get_nowait()
                changed = True
                if kind == "snapshot":
                    self.ui.update(a)
                elif kind == "roster":
                    self.ui.set_roster(a)
                elif kind == "answer":
                    self.ui.answer(a, b)
                    if a.action in ("start", "attend", "enroll"):
                        self._want_roster.set()
                elif kind == "key":
                    self._input(a, b, "device")
        except queue.Empty:
            pass
        if changed:
            self._send_calls()
            self._draw()
        now = time.monotonic()
        if now - self._last_watchdog >= (systemd.watchdog_interval() or 5.0):  # the Tk loop turns
            systemd.notify("WATCHDOG=1")
            self._last_watchdog = now
        self.root.after(PUMP_MS, self._pump)

    def _send_calls(self) -> None:
        calls, self.ui.calls = self.ui.calls, []
        for call in calls:
            self._worker.submit(self._call, call)

    def _call(self, call: Call) -> None:
        try:
            result = self.api.call(call.action, call.request)
        except DaemonDown:
            result = ctl.ControlError(code="daemon_down", message="终端程序没有响应，请稍候再试",
                                      message_en="the terminal daemon did not answer")
        self.inbox.put(("answer", call, result))

    # --- keys ---------------------------------------------------------------------------

    def _press(self, event: tk.Event[Any]) -> None:
        raw = x_key(event.keysym)
        # X sends a held key as release+press pairs with one timestamp; held without
        # releases (detectable auto-repeat) it is a press of a key already down
        repeat = raw in self._held or self._released.get(raw) == event.time
        self._held.add(raw)
        self._input(raw, repeat, "x")

    def _release(self, event: tk.Event[Any]) -> None:
        raw = x_key(event.keysym)
        self._held.discard(raw)
        self._released[raw] = int(event.time)

    def _device_key(self, raw: str, repeat: bool) -> None:
        self.inbox.put(("key", raw, repeat))  # from a device thread: Tk handles it in _pump

    def _input(self, raw: str, repeat: bool, source: str) -> None:
        if self.ui.screen == "learn":
            if not repeat:
                self.ui.learn_key(raw, self.keymap.lookup(raw))
                if self.ui.learn_done is not None:
                    self.keymap.save(self.ui.learn_done)
                    self.ui.learn_done = None
                self._draw()
            return
        command = self.keymap.lookup(raw)
        if command is None or not self.filter.accept(command, time.monotonic(), repeat=repeat, source=source):
            return
        log.debug("key %s -> %s on %s", raw, command, self.ui.screen)
        self.ui.key(command)
        self._send_calls()
        self._draw()

    # --- drawing ------------------------------------------------------------------------

    def _draw(self) -> None:
        view = self.ui.view()
        # the window's name says where the interface is (screen, daemon up, focus, digits
        # typed, entries), so a technician (`xdotool getwindowname`) and the tests can see
        # it without a picture
        keys = ",".join(e.key for e in view.entries[:24])
        up = "up" if self.ui.daemon_up else "down"
        name = f"yuanjiao-tv|{view.screen}|{up}|{view.focus or '-'}|{view.typed or '-'}|{keys}"
        if name != self._name:
            self.root.title(name)
            self._name = name
        if view.video:
            if not self._shown_video:
                self.video.lift()
                self._shown_video = True
            return
        if self._shown_video:
            tk.Misc.tkraise(self.canvas)  # Canvas.lift raises canvas items, not the widget
            self._shown_video = False
        c, w, h = self.canvas, self.width, self.height
        c.delete("all")
        c.create_rectangle(0, 0, w, 120, fill=BAND, width=0)
        c.create_text(60, 60, text=view.title, anchor="w", fill=FG, font=self.fonts["title"])
        now = datetime.now(COUNTY_TIME).strftime("%Y-%m-%d %H:%M")
        c.create_text(w - 60, 60, text=now, anchor="e", fill=DIM, font=self.fonts["info"])
        split = 940 if view.entries else 60
        self._draw_entries(view, 60, 150, split - 40, h - 150)
        self._draw_info(view, split, 160, w - 60)
        c.create_rectangle(0, h - 130, w, h, fill=BAND, width=0)
        if view.message:
            c.create_text(60, h - 95, text=view.message, anchor="w", fill=FOCUS_BG,
                          font=self.fonts["message"])
        c.create_text(60, h - 38, text=view.hint, anchor="w", fill=DIM, font=self.fonts["hint"])

    def _draw_entries(self, view: View, x: int, top: int, right: int, bottom: int) -> None:
        rows: list[tuple[str, Entry | str]] = []
        group = None
        for e in view.entries:
            if e.group and e.group != group:
                rows.append(("group", e.group))
            group = e.group
            rows.append(("entry", e))
        heights = [52 if kind == "group" else 76 for kind, _ in rows]
        focus_row = next((i for i, (kind, e) in enumerate(rows)
                          if kind == "entry" and isinstance(e, Entry) and e.key == view.focus), 0)
        # scroll so the focused row shows, with its group heading when it fits
        start, room = 0, bottom - top
        while sum(heights[start:focus_row + 1]) > room - 80 and start < focus_row:
            start += 1
        y = top
        c = self.canvas
        if start > 0:
            c.create_text(right, top - 10, text="▲", anchor="e", fill=DIM, font=self.fonts["dim"])
        for (kind, item), height in zip(rows[start:], heights[start:], strict=True):
            if y + height > bottom:
                c.create_text(right, bottom, text="▼", anchor="e", fill=DIM, font=self.fonts["dim"])
                break
            if kind == "group":
                c.create_text(x, y + 30, text=str(item), anchor="w", fill="#8FB8DE", font=self.fonts["group"])
            elif isinstance(item, Entry):
                label = ("✔ " if item.marked else "") + item.label
                if item.key == view.focus:
                    c.create_rectangle(x - 16, y + 4, right, y + height - 4, fill=FOCUS_BG, width=0)
                    c.create_text(x + 4, y + height // 2, text=label, anchor="w", fill=FOCUS_FG,
                                  font=self.fonts["focus"], width=right - x - 20)
                else:
                    colour = "#7CFC7C" if item.marked else FG
                    c.create_text(x + 4, y + height // 2, text=label, anchor="w", fill=colour,
                                  font=self.fonts["entry"], width=right - x - 20)
            y += height

    def _draw_info(self, view: View, x: int, top: int, right: int) -> None:
        c, y = self.canvas, top
        for text, style in view.info:
            if style.startswith("bar:"):
                pct = float(style[4:])
                c.create_text(x, y, text=text, anchor="nw", fill=FG, font=self.fonts["info"])
                y += 54
                c.create_rectangle(x, y, right, y + 22, outline=DIM, width=2)
                c.create_rectangle(x, y, x + (right - x) * pct / 100, y + 22, fill="#4FC3F7", width=0)
                y += 40
                continue
            font = self.fonts.get(style, self.fonts["info"]) if style in ("big", "code", "dim") \
                else self.fonts["info"]
            item = c.create_text(x, y, text=text, anchor="nw", fill=STYLE_COLOURS.get(style, FG), font=font,
                                 width=right - x)
            box = c.bbox(item)
            y = (box[3] if box else y + 50) + 14
        if view.typed and view.screen in ("start", "late"):
            c.create_rectangle(x, 760, right, 900, outline=FOCUS_BG, width=4)
            c.create_text(x + 30, 830, text=f"输入编号：{view.typed}", anchor="w", fill=FOCUS_BG,
                          font=self.fonts["code"])


def run(api: DaemonApi, keymap: KeyMap, *, size: tuple[int, int], kiosk: bool, devices: list[Path],
        on_ready: Callable[[TvApp], None] | None = None) -> None:
    app = TvApp(api, keymap, size=size, kiosk=kiosk, devices=devices)
    if on_ready is not None:
        on_ready(app)
    app.run()

"""The TV interface's screens as plain data: what is shown, what is focused, and what
each command does. No toolkit here — `terminal.interface.tv.app` draws a `View` with Tk and sends
the `Call`s to the daemon — so the focus rules are tested without a display.

Focus rules (each has a test in tests/test_tv_focus.py):
* every screen opens with its first entry focused;
* an arrow key with nothing focused focuses the first entry;
* background updates (download progress, link state, roster) keep the focused entry,
  found again by its key, wherever it moved in the list;
* OK during playback toggles pause; left and right seek (whether the overlay shows or not);
* Back at the home screen stays there;
* on menus, digit N focuses the Nth entry (0 is the tenth); on the sign-in and enrollment
  screens digits are typed (member numbers, the code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from shared.protocol import Member
from terminal.interface import control as ctl
from terminal.interface.snapshot import Snapshot
from terminal.interface.tv.keys import LEARN_ORDER, Command

try:
    COUNTY_TIME: timezone | ZoneInfo = ZoneInfo("Asia/Shanghai")
except Exception:  # no tz database on the box: the county's offset has no summer time
    COUNTY_TIME = timezone(timedelta(hours=8))

SEEK_STEP = 30.0  # seconds per left/right press during playback
VOLUME_STEP = 10
CODE_DIGITS = 16
KIND_NAMES = {"lecture": "党课讲座", "feature_film": "专题片", "farming_technique": "农业实用技术"}


@dataclass(frozen=True)
class Entry:
    key: str  # stable identity: focus follows it through updates
    label: str
    group: str = ""  # heading drawn above the first entry of a group (kind, branch)
    marked: bool = False  # e.g. signed in


class Menu:
    """A list of entries and the one focused (by key), following the focus rules."""

    def __init__(self, entries: list[Entry] | None = None) -> None:
        self.entries: list[Entry] = []
        self.focus: str | None = None
        if entries:
            self.open(entries)

    def open(self, entries: list[Entry]) -> None:
        """A screen opening: its first entry is focused."""
        self.entries = list(entries)
        self.focus = self.entries[0].key if self.entries else None

    def update(self, entries: list[Entry]) -> None:
        """New entries from a background update: the focus stays on its key. Only when the
        focused entry is gone does the focus go to the one now in its place."""
        old = self.index
        self.entries = list(entries)
        if self.focus is None or any(e.key == self.focus for e in self.entries):
            return
        self.focus = self.entries[min(old or 0, len(self.entries) - 1)].key if self.entries else None

    @property
    def index(self) -> int | None:
        for i, e in enumerate(self.entries):
            if e.key == self.focus:
                return i
        return None

    @property
    def focused(self) -> Entry | None:
        i = self.index
        return self.entries[i] if i is not None else None

    def move(self, step: int) -> None:
        if not self.entries:
            return
        i = self.index
        if i is None:  # nothing focused: the first arrow press focuses the first entry
            self.focus = self.entries[0].key
            return
        self.focus = self.entries[max(0, min(len(self.entries) - 1, i + step))].key

    def jump(self, n: int) -> None:
        """Digit n focuses the nth entry (1-based; 0 means the tenth)."""
        i = 9 if n == 0 else n - 1
        if i < len(self.entries):
            self.focus = self.entries[i].key


@dataclass(frozen=True)
class Call:
    """A request for the daemon, sent by the app; its answer comes back to `Ui.answer`."""

    action: str  # a key of terminal.interface.control.ROUTES
    request: Any


@dataclass
class View:
    """What the app draws: a title, the entries with the focus, information lines."""

    screen: str
    title: str
    entries: list[Entry]
    focus: str | None
    info: list[tuple[str, str]]  # (text, style): style is "", "big", "good", "bad", "dim"
    hint: str
    message: str = ""
    typed: str = ""  # digits being typed, shown large
    video: bool = False  # playing: draw nothing, show the video frame


def local_time(rfc3339: str) -> str:
    when = datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return when.astimezone(COUNTY_TIME).strftime("%Y-%m-%d %H:%M")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


@dataclass
class Ui:
    """The whole interface's state. `key()` and `answer()` change it and queue `calls`."""

    xwindow: int = 0  # the video frame libvlc draws into
    screen: str = "home"
    menu: Menu = field(default_factory=Menu)
    snapshot: Snapshot | None = None
    roster: list[Member] = field(default_factory=list)
    village_name: str = ""
    calls: list[Call] = field(default_factory=list)
    message: str = ""
    typed: str = ""  # digits being typed (member number, enrollment code)
    signed: list[str] = field(default_factory=list)  # member numbers signed in on the start screen
    start: ctl.StartSession | None = None  # what the start screen will play
    back_to: str = "home"
    learned: dict[str, Command] = field(default_factory=dict)
    learn_step: int = 0
    learn_done: dict[str, Command] | None = None  # set when learning finished: the app saves it
    daemon_up: bool = False
    playing_seen: bool = False  # the session this interface started has been seen running
    link_test: str = ""

    # --- opening screens --------------------------------------------------------------

    def open(self, screen: str) -> None:
        if screen not in ("start", "late", "enroll") or self.screen in ("home", "settings", "playing"):
            self.back_to = self.screen if self.screen != screen else "home"
        self.screen = screen
        self.typed = ""
        self.message = ""
        if screen == "learn":
            self.learned, self.learn_step, self.learn_done = {}, 0, None
        self.menu.open(self._entries())

    def go_home(self) -> None:
        self.open("home")

    def start_with(self, request: ctl.StartSession) -> None:
        self.start, self.signed = request, []
        self.open("start")

    # --- background updates: never move the focus ---------------------------------------

    def update(self, snapshot: Snapshot | None) -> None:
        first = not self.daemon_up and snapshot is not None
        self.daemon_up = snapshot is not None
        self.snapshot = snapshot
        session = snapshot.session if snapshot else None
        if self.screen == "playing":
            if session is not None:
                self.playing_seen = True
            elif self.playing_seen:
                self.playing_seen = False
                self.open("summary")
                return
        elif self.screen == "late" and session is None and self.playing_seen:
            self.playing_seen = False
            self.open("summary")
            return
        if first and self.screen == "home":
            self.menu.open(self._entries())  # home opens for real once the daemon answers
        else:
            self.menu.update(self._entries())

    def set_roster(self, answer: ctl.RosterAnswer) -> None:
        self.roster = list(answer.members)
        self.village_name = answer.village_name
        self.menu.update(self._entries())

    # --- commands ---------------------------------------------------------------------

    def key(self, command: Command) -> None:
        handler = getattr(self, "_key_" + self.screen)
        handler(command)

    def _navigate(self, command: Command) -> bool:
        """Arrows move the focus; True when the command was one of them."""
        if command in (Command.UP, Command.LEFT):
            self.menu.move(-1)
        elif command in (Command.DOWN, Command.RIGHT):
            self.menu.move(1)
        else:
            return False
        return True

    def _key_home(self, command: Command) -> None:
        digit = command.digit
        if digit is not None:
            self.menu.jump(digit)
        elif command == Command.OK:
            self._activate_home()
        elif command in (Command.MENU, Command.BLUE):
            self.open("settings")
        elif command in (Command.BACK, Command.HOME):
            self.menu.open(self._entries())  # stays home; back to the top
        else:
            self._navigate(command)

    def _activate_home(self) -> None:
        entry = self.menu.focused
        if entry is None:
            self.menu.move(1)
            return
        kind, _, rest = entry.key.partition(":")
        if kind == "session":
            self.start_with(ctl.StartSession(session_id=rest, xwindow=self.xwindow))
        elif kind == "item":
            title = entry.label
            self.start_with(ctl.StartSession(items=[rest], title=title, xwindow=self.xwindow))
        elif kind in ("settings", "enroll"):
            self.open(kind)

    def _key_start(self, command: Command) -> None:
        self._sign_in_key(command, late=False)

    def _key_late(self, command: Command) -> None:
        self._sign_in_key(command, late=True)

    def _sign_in_key(self, command: Command, *, late: bool) -> None:
        digit = command.digit
        if digit is not None:
            self.typed = (self.typed + str(digit))[:8]
            return
        if command == Command.BACK:
            if self.typed:
                self.typed = self.typed[:-1]
            elif late:
                self._back_to_playing()
            else:
                self.go_home()
            return
        if command == Command.HOME and not late:
            self.go_home()
            return
        if command == Command.OK:
            if self.typed:
                self._sign(self.typed, late=late)
                self.typed = ""
                return
            entry = self.menu.focused
            if entry is None:
                self.menu.move(1)
            elif entry.key == "go":
                self._begin()
            elif entry.key == "resume":
                self._back_to_playing()
            elif entry.key.startswith("member:"):
                self._sign(entry.key.partition(":")[2], late=late)
            return
        if command in (Command.PLAY_PAUSE,) and not late:
            self._begin()
            return
        self._navigate(command)

    def _sign(self, member_no: str, *, late: bool) -> None:
        known = {m.member_no: m for m in self.roster}
        if self.roster and member_no not in known:
            self.message = f"名册里没有 {member_no} 号"
            return
        name = known[member_no].name if member_no in known else member_no
        if late:
            if member_no in self._attending():
                self.message = f"{name} 已经签到"
                return
            self.calls.append(Call("attend", ctl.Attend(attendees=[member_no])))
            self.message = f"正在签到：{name}"
            return
        if member_no in self.signed:
            self.signed.remove(member_no)
            self.message = f"已取消签到：{name}"
        else:
            self.signed.append(member_no)
            self.message = f"已签到：{member_no} 号 {name}"
        self.menu.update(self._entries())

    def _attending(self) -> list[str]:
        s = self.snapshot.session if self.snapshot else None
        return list(s.attendees) if s else []

    def _begin(self) -> None:
        if self.start is None:
            self.go_home()
            return
        request = ctl.StartSession(session_id=self.start.session_id, items=self.start.items,
                                   title=self.start.title, attendees=list(self.signed),
                                   xwindow=self.xwindow)
        self.calls.append(Call("start", request))
        self.message = "正在开始放映…"

    def _back_to_playing(self) -> None:
        self.screen = "playing"
        self.typed = ""
        self.menu.open([])
        self.calls.append(Call("resume", ctl.Nothing()))
        self.calls.append(Call("overlay", ctl.Overlay()))

    def _key_playing(self, command: Command) -> None:
        digit = command.digit
        note = ""
        if digit is not None:
            self.typed = (self.typed + str(digit))[:8]
            note = f"迟到签到：{self.typed} 号，按确定"
        elif command == Command.OK and self.typed:
            self._sign(self.typed, late=True)
            self.typed = ""
        elif command in (Command.OK, Command.PLAY_PAUSE):
            self.calls.append(Call("toggle", ctl.Nothing()))
        elif command in (Command.LEFT, Command.SEEK_BACK):
            self.calls.append(Call("seek", ctl.Seek(delta=-SEEK_STEP)))
        elif command in (Command.RIGHT, Command.SEEK_FWD):
            self.calls.append(Call("seek", ctl.Seek(delta=SEEK_STEP)))
        elif command in (Command.UP, Command.VOL_UP):
            self.calls.append(Call("volume", ctl.Volume(delta=VOLUME_STEP)))
            return  # the volume change shows the overlay with the new level
        elif command in (Command.DOWN, Command.VOL_DOWN):
            self.calls.append(Call("volume", ctl.Volume(delta=-VOLUME_STEP)))
            return
        elif command == Command.NEXT:
            self.calls.append(Call("next", ctl.Nothing()))
        elif command == Command.STOP:
            self.calls.append(Call("stop", ctl.Nothing()))
            return
        elif command in (Command.MENU, Command.GREEN):
            self.calls.append(Call("pause", ctl.Nothing()))
            self.open("late")
            return
        elif command == Command.BACK:
            note = "结束放映请按「停止」键" if not self.typed else ""
            self.typed = ""
        self.calls.append(Call("overlay", ctl.Overlay(note=note)))

    def _key_summary(self, command: Command) -> None:
        if command in (Command.OK, Command.BACK, Command.HOME):
            self.go_home()
        else:
            self._navigate(command)

    def _key_enroll(self, command: Command) -> None:
        digit = command.digit
        if digit is not None:
            if len(self.typed) < CODE_DIGITS:
                self.typed += str(digit)
            if len(self.typed) == CODE_DIGITS:
                self.menu.focus = "submit"
            return
        if command == Command.BACK:
            if self.typed:
                self.typed = self.typed[:-1]
            else:
                self.open(self.back_to if self.back_to != "enroll" else "home")
            return
        if command == Command.HOME:
            self.go_home()
        elif command == Command.OK:
            entry = self.menu.focused
            if entry is None:
                self.menu.move(1)
            elif entry.key == "submit":
                if len(self.typed) != CODE_DIGITS:
                    self.message = f"注册码是 {CODE_DIGITS} 位数字，已输入 {len(self.typed)} 位"
                else:
                    self.calls.append(Call("enroll", ctl.EnrollCode(code=self.typed)))
                    self.message = "正在注册，请稍候…"
            elif entry.key == "clear":
                self.typed = ""
            elif entry.key == "home":
                self.go_home()
        else:
            self._navigate(command)

    def _key_settings(self, command: Command) -> None:
        digit = command.digit
        if digit is not None:
            self.menu.jump(digit)
        elif command in (Command.BACK, Command.HOME):
            self.go_home()
        elif command == Command.OK:
            entry = self.menu.focused
            key = entry.key if entry else ""
            if entry is None:
                self.menu.move(1)
            elif key == "link-test":
                self.calls.append(Call("link-test", ctl.Nothing()))
                self.link_test = "正在测试连接…"
            elif key == "window":
                self.calls.append(Call("window", ctl.OpenWindow(hours=6)))
            elif key in ("learn", "enroll"):
                self.open(key)
            elif key == "home":
                self.go_home()
        else:
            self._navigate(command)

    def learn_key(self, raw: str, command: Command | None) -> None:
        """On the learning screen every raw key comes here first (not through the mapping,
        except that the key learned for OK skips a key the remote does not have)."""
        if self.learn_done is not None:
            return
        wanted, _words = LEARN_ORDER[self.learn_step]
        ok_raw = next((r for r, c in self.learned.items() if c == Command.OK), None)
        if raw == ok_raw and wanted != Command.OK:
            self.message = f"已跳过：{_words}"
        elif raw in self.learned:
            self.message = "这个键已经用过了，请按另一个键（没有这个键就按「确定」跳过）"
            return
        else:
            self.learned[raw] = wanted
            self.message = f"记住了：{_words}"
        self.learn_step += 1
        if self.learn_step >= len(LEARN_ORDER):
            self.learn_done = dict(self.learned)
            self.open("settings")
            self.message = f"遥控器已学好，记住了 {len(self.learn_done)} 个键"

    # --- answers from the daemon --------------------------------------------------------

    def answer(self, call: Call, result: Any) -> None:
        """`result` is the action's answer struct, or a `ControlError`."""
        if isinstance(result, ctl.ControlError):
            if call.action == "link-test":
                self.link_test = result.message
            elif call.action != "overlay":
                self.message = result.message
            return
        if call.action == "start":
            self.screen, self.typed, self.message = "playing", "", ""
            self.playing_seen = False
            self.menu.open([])
            self.calls.append(Call("overlay", ctl.Overlay()))
        elif call.action == "attend" and isinstance(result, ctl.Attendees):
            self.message = f"已签到，现在共 {len(result.attendees)} 人"
            snap = self.snapshot
            if snap is not None and snap.session is not None:  # shown now, not at the next poll
                session = msgspec.structs.replace(snap.session, attendees=list(result.attendees))
                self.snapshot = msgspec.structs.replace(snap, session=session)
                self.menu.update(self._entries())
            if self.screen == "playing":
                self.calls.append(Call("overlay", ctl.Overlay(note=self.message)))
        elif call.action == "enroll" and isinstance(result, ctl.Enrolled):
            self.message = (f"注册成功：终端 {result.terminal_id}（{result.village_name}），"
                            "终端正在重新启动…")
            self.typed = ""
        elif call.action == "link-test" and isinstance(result, ctl.LinkTest):
            self.link_test = result.message + (f"（{result.server_url}）" if result.server_url else "")
        elif call.action == "window" and isinstance(result, ctl.WindowOpen):
            self.message = f"下载窗口已开放到 {local_time(result.window_open_until)}"

    # --- entries and the view -----------------------------------------------------------

    def _entries(self) -> list[Entry]:
        s = self.snapshot
        if self.screen == "home":
            out: list[Entry] = []
            if s is not None and s.next_session is not None:
                n = s.next_session
                out.append(Entry(f"session:{n.session_id}", f"开始放映：{n.title}", group="安排的场次"))
            for kind, name in KIND_NAMES.items():
                for i in sorted((i for i in (s.items if s else []) if i.state == "ready" and i.kind == kind),
                                key=lambda i: i.title):
                    out.append(Entry(f"item:{i.sha256}", i.title or i.sha256[:12], group=f"点播 · {name}"))
            others = [i for i in (s.items if s else []) if i.state == "ready" and i.kind not in KIND_NAMES]
            out += [Entry(f"item:{i.sha256}", i.title or i.sha256[:12], group="点播 · 其他") for i in others]
            if s is not None and not s.enrolled:
                out.insert(0, Entry("enroll", "终端注册（输入注册码）", group="设置"))
            out.append(Entry("settings", "设置与诊断", group="设置"))
            return out
        if self.screen in ("start", "late"):
            first = Entry("go", "▶ 开始放映") if self.screen == "start" else Entry("resume", "▶ 回到放映")
            here = set(self.signed) if self.screen == "start" else set(self._attending())
            members = sorted(self.roster, key=lambda m: (m.branch, int(m.member_no) if m.member_no.isdigit()
                                                         else 0, m.member_no))
            return [first, *(Entry(f"member:{m.member_no}", f"{m.member_no}  {m.name}",
                                   group=m.branch or "本村党员", marked=m.member_no in here)
                             for m in members)]
        if self.screen == "summary":
            return [Entry("home", "返回首页")]
        if self.screen == "enroll":
            return [Entry("submit", "确认注册"), Entry("clear", "清除重输"), Entry("home", "返回首页")]
        if self.screen == "settings":
            return [Entry("link-test", "连通测试"), Entry("window", "现在开放下载 6 小时"),
                    Entry("learn", "学习遥控器"), Entry("enroll", "终端注册"), Entry("home", "返回首页")]
        return []

    def _name(self, member_no: str) -> str:
        for m in self.roster:
            if m.member_no == member_no:
                return m.name
        return f"{member_no} 号"

    def view(self) -> View:
        s = self.snapshot
        info: list[tuple[str, str]] = []
        hint = "↑↓ 选择　确定 进入　返回 上一步　数字键 直接选第几项"
        title = "远教终端"
        if s is not None:
            name = self.village_name or s.village_name
            title = f"{name} 远教终端" if name else f"远教终端 {s.terminal_id}"
        if not self.daemon_up and self.screen != "playing":
            info.append(("正在连接终端程序…", "bad"))
        if self.screen == "home":
            info += self._home_info()
        elif self.screen in ("start", "late"):
            title = "迟到签到" if self.screen == "late" else "签到并开始放映"
            what = self._start_title()
            info.append((f"放映：{what}", "big"))
            people = self.signed if self.screen == "start" else self._attending()
            info.append((f"已签到 {len(people)} 人", "good" if people else ""))
            for no in people[-8:]:
                info.append((f"{no} 号　{self._name(no)}", ""))
            info.append(("按数字键输入党员编号，再按确定；或用上下键选姓名按确定", "dim"))
            hint = "数字 输入编号　确定 签到/开始　返回 删除/上一步"
        elif self.screen == "playing":
            return View(screen="playing", title="", entries=[], focus=None, info=[], hint="",
                        video=True, typed=self.typed)
        elif self.screen == "summary":
            title = "本次放映结束"
            info += self._summary_info()
            hint = "确定 返回首页"
        elif self.screen == "enroll":
            title = "终端注册"
            shown = self.typed + "_" * (CODE_DIGITS - len(self.typed))
            info.append(("请输入县里给的 16 位注册码：", "big"))
            info.append((" ".join(shown[i:i + 4] for i in range(0, CODE_DIGITS, 4)), "code"))
            info.append((f"已输入 {len(self.typed)} / {CODE_DIGITS} 位", ""))
            hint = "数字 输入　返回 删除一位　确定 注册"
        elif self.screen == "settings":
            title = "设置与诊断"
            info += self._settings_info()
        elif self.screen == "learn":
            title = "学习遥控器"
            if self.learn_step < len(LEARN_ORDER):
                words = LEARN_ORDER[self.learn_step][1]
                info.append((f"请按遥控器上的「{words}」键", "big"))
                info.append((f"第 {self.learn_step + 1} / {len(LEARN_ORDER)} 个", ""))
                info.append(("遥控器上没有这个键：按刚学过的「确定」键跳过", "dim"))
            hint = ""
        return View(screen=self.screen, title=title, entries=self.menu.entries, focus=self.menu.focus,
                    info=info, hint=hint, message=self.message, typed=self.typed)

    def _start_title(self) -> str:
        s, r = self.snapshot, self.start
        if self.screen == "late" and s is not None and s.session is not None:
            return s.session.title
        if r is None:
            return ""
        if r.session_id and s is not None and s.next_session is not None:
            return s.next_session.title
        return r.title or "点播"

    def _home_info(self) -> list[tuple[str, str]]:
        s = self.snapshot
        if s is None:
            return []
        info: list[tuple[str, str]] = []
        problems = s.problems
        state = "一切正常" if not problems else f"需要注意 {len(problems)} 件事"
        info.append((f"终端 {s.terminal_id or '未注册'}　{state}", "good" if not problems else "bad"))
        n = s.next_session
        if n is not None:
            ready = "已准备好" if n.ready else f"还有 {n.missing} 部课程在下载"
            info.append((f"下一场：{local_time(n.starts_at)}　{n.title}", "big"))
            info.append((f"　{ready}", "good" if n.ready else "bad"))
        else:
            info.append(("近期没有安排的场次", ""))
        link = {"connected": "已连上县里的服务器", "searching": "正在寻找县里的服务器"}.get(
            s.link, "连不上县里的服务器") if s.enrolled else "注册以后才连县里的服务器"
        info.append((f"网络：{link}", "good" if s.link == "connected" else "dim"))
        for i in s.items:
            if i.state == "downloading" and i.size:
                pct = 100 * i.bytes_present / i.size
                info.append((f"下载中 {i.title[:14]} {pct:3.0f}%", f"bar:{pct:.0f}"))
        waiting = sum(1 for i in s.items if i.state == "queued")
        if waiting:
            info.append((f"另有 {waiting} 部课程排队等待下载", "dim"))
        for p in problems:
            info.append((f"⚠ {p.message}", "bad"))
            info.append((f"　{p.action}", ""))
        if s.outbox_backlog:
            info.append((f"{s.outbox_backlog} 条签到记录等待上传", "dim"))
        return info

    def _summary_info(self) -> list[tuple[str, str]]:
        s = self.snapshot
        done = s.last_session if s else None
        if done is None:
            return [("正在保存放映记录…", "")]
        minutes = done.watched_seconds / 60
        info: list[tuple[str, str]] = [(done.title, "big"),
                                       (f"签到 {len(done.attendees)} 人，观看 {minutes:.1f} 分钟", "good")]
        names = [f"{no} {self._name(no)}" for no in done.attendees]
        for i in range(0, len(names), 3):
            info.append(("　".join(names[i:i + 3]), ""))
        if done.problem:  # the player process was lost: say so, and that what played counts
            info.append((f"⚠ 放映提前结束：{done.problem.split(' / ')[0]}", "bad"))
            info.append(("　已播放的部分照常计入；可以重新开始放映", ""))
        saved = "已上传到县里" if done.delivered else "已保存在终端，联网后自动上传"
        info.append((f"签到记录{saved}", "good"))
        return info

    def _settings_info(self) -> list[tuple[str, str]]:
        s = self.snapshot
        if s is None:
            return []
        info = [
            (f"服务器：{s.server_url or '未连上'}", ""),
            (f"终端编号：{s.terminal_id or '未注册'}", ""),
            (f"村：{self.village_name or s.village_name or '-'}（{s.village_code or '-'}）", ""),
            (f"软件版本：{s.software_version}", ""),
            (f"缓存：{human_bytes(s.cache_bytes)} / {human_bytes(s.cache_quota)}，"
             f"剩余空间 {human_bytes(s.disk_free)}", ""),
            (f"下载时段：{'全天' if s.download_window in ('', 'always') else s.download_window}"
             f"（{'现在可以下载' if s.window_open else '现在不下载'}）", ""),
        ]
        if self.link_test:
            info.append((f"连通测试：{self.link_test}", "big"))
        return info

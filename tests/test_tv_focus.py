"""The TV interface's focus rules, on the screen model (no display needed): every screen
opens with a focused entry; arrows with nothing focused focus the first entry;
background updates (downloads, link state, roster) never move the focus; OK during
playback toggles pause and left/right seek; Back at home stays home; digits jump to
the Nth entry of a menu. Each rule fails here when the model breaks it."""

from __future__ import annotations

import msgspec

from shared.protocol import Member
from terminal.interface import control as ctl
from terminal.interface.status import ItemStatus, NextSession, SessionStatus, Snapshot
from terminal.interface.tv.keys import Command
from terminal.interface.tv.screens import Entry, Menu, Ui


def snapshot(*, items: int = 3, downloading: int = 0, link: str = "connected",
             session: SessionStatus | None = None, next_session: bool = True) -> Snapshot:
    ready = [ItemStatus(sha256=f"{n:064x}", title=f"课程{n}", size=100, state="ready", bytes_present=100,
                        assigned=True, kind="lecture") for n in range(1, items + 1)]
    busy = [ItemStatus(sha256=f"{n + 100:064x}", title="下载中", size=100, state="downloading",
                       bytes_present=downloading, assigned=True, kind="lecture") for n in range(1)]
    plan = NextSession(session_id="s1", title="冬训第一课", starts_at="2026-12-01T11:00:00Z",
                       items=[ready[0].sha256] if ready else [], ready=True) if next_session else None
    return Snapshot(
        terminal_id="T140121100001", village_code="140121100001", software_version="0.1.0", condition="ok",
        server_url=None, server_fingerprint=None, catalog_version=1, catalog_expires_at=None,
        catalog_stale=False, download_window="always", window_open=True, bandwidth_limit=0, cache_bytes=0,
        cache_quota=1, disk_free=0, disk_total=0, items=ready + busy, outbox_backlog=0, outbox_quarantined=0,
        session=session, link=link, next_session=plan,
    )


def playing(state: str = "playing") -> SessionStatus:
    return SessionStatus(title="冬训第一课", session_id="s1", attendees=["1"], playing="a" * 64,
                         position_seconds=3.0, state=state)


def ui_at(screen: str = "home", snap: Snapshot | None = None) -> Ui:
    ui = Ui(xwindow=42)
    ui.update(snap or snapshot())
    ui.set_roster(ctl.RosterAnswer(village_name="杜和庄村", members=[
        Member(member_no=str(n), name=f"党员{n}", branch="一支部" if n < 4 else "二支部") for n in range(1, 7)
    ]))
    if screen != "home":
        ui.open(screen)
    return ui


def test_every_screen_opens_with_a_focused_entry() -> None:
    ui = ui_at()
    assert ui.menu.focus == "session:s1"
    for screen in ("settings", "enroll", "summary"):
        ui.open(screen)
        assert ui.menu.focus == ui.menu.entries[0].key, screen
    ui.start_with(ctl.StartSession(session_id="s1"))
    assert ui.screen == "start" and ui.menu.focus == "go"


def test_arrows_with_nothing_focused_focus_the_first_entry() -> None:
    menu = Menu()
    menu.update([Entry("a", "A"), Entry("b", "B")])  # entries arriving do not take the focus
    assert menu.focus is None
    menu.move(1)
    assert menu.focus == "a"
    ui = ui_at()
    ui.menu.focus = None
    ui.key(Command.DOWN)
    assert ui.menu.focus == ui.menu.entries[0].key


def test_background_updates_never_move_the_focus() -> None:
    ui = ui_at()
    ui.key(Command.DOWN)
    ui.key(Command.DOWN)
    focused = ui.menu.focus
    assert focused == f"item:{2:064x}"
    # download progress, link state, a new course ahead of it, the next session gone
    ui.update(snapshot(items=3, downloading=50, link="connection refused"))
    ui.update(snapshot(items=5, downloading=90, next_session=False))
    assert ui.menu.focus == focused
    assert ui.menu.index == 1  # it moved in the list; the focus followed it
    roster = list(ui.roster)
    ui.set_roster(ctl.RosterAnswer(village_name="x", members=[]))
    assert ui.menu.focus == focused
    ui.set_roster(ctl.RosterAnswer(village_name="x", members=roster))
    # on the sign-in screen too
    ui.start_with(ctl.StartSession(session_id="s1"))
    ui.key(Command.DOWN)
    ui.key(Command.DOWN)
    ui.update(snapshot(downloading=10))
    ui.set_roster(ctl.RosterAnswer(village_name="x", members=[
        Member(member_no="0", name="新来的", branch="一支部"), *ui.roster]))
    assert ui.menu.focus == "member:2"


def test_ok_during_playback_toggles_pause_and_left_right_seek() -> None:
    ui = ui_at()
    ui.key(Command.OK)
    ui.key(Command.OK)
    start = ui.calls[-1]
    assert start.action == "start" and start.request.session_id == "s1" and start.request.xwindow == 42
    ui.answer(start, ctl.Started(title="冬训第一课", attendees=[]))
    assert ui.screen == "playing"
    ui.update(snapshot(session=playing()))
    ui.calls.clear()
    ui.key(Command.OK)
    assert [c.action for c in ui.calls] == ["toggle", "overlay"]  # and any key shows the overlay
    ui.calls.clear()
    ui.key(Command.LEFT)
    ui.key(Command.RIGHT)
    seeks = [c.request for c in ui.calls if c.action == "seek"]
    assert [s.delta for s in seeks] == [-30.0, 30.0]
    ui.calls.clear()
    ui.key(Command.PLAY_PAUSE)
    assert ui.calls[0].action == "toggle"
    ui.update(snapshot(session=None))  # the session ended by itself
    assert ui.screen == "summary" and ui.menu.focus == "home"


def test_back_at_home_stays_home() -> None:
    ui = ui_at()
    for command in (Command.BACK, Command.BACK, Command.HOME, Command.BACK):
        ui.key(command)
        assert ui.screen == "home"
        assert ui.menu.focus == ui.menu.entries[0].key


def test_digits_jump_to_the_nth_entry_of_a_menu() -> None:
    ui = ui_at()
    ui.key(Command.D3)
    assert ui.menu.index == 2
    ui.key(Command.D9)  # there is no ninth: the focus stays
    assert ui.menu.index == 2
    ui.open("settings")
    ui.key(Command.D4)
    assert ui.menu.focus == "enroll"
    # the sign-in screen types member numbers instead
    ui.start_with(ctl.StartSession(session_id="s1"))
    ui.key(Command.D1)
    ui.key(Command.D2)
    assert ui.typed == "12" and ui.menu.focus == "go"


def test_sign_in_by_number_and_by_name_and_late_arrivals() -> None:
    ui = ui_at()
    ui.start_with(ctl.StartSession(session_id="s1"))
    ui.key(Command.D5)
    ui.key(Command.OK)
    ui.key(Command.DOWN)
    ui.key(Command.OK)  # 1 党员1: the list is grouped by branch, numbers in order
    ui.key(Command.D9)
    ui.key(Command.OK)  # nobody has number 9
    assert ui.signed == ["5", "1"] and "没有 9 号" in ui.message
    ui.key(Command.PLAY_PAUSE)
    assert msgspec.to_builtins(ui.calls[-1].request)["attendees"] == ["5", "1"]
    ui.answer(ui.calls[-1], ctl.Started(title="t", attendees=["5", "1"]))
    ui.update(snapshot(session=playing()))
    ui.calls.clear()
    ui.key(Command.D3)
    ui.key(Command.OK)
    assert [c.request for c in ui.calls if c.action == "attend"] == [ctl.Attend(attendees=["3"])]
    ui.key(Command.MENU)  # the late sign-in list pauses the video
    assert ui.screen == "late" and ui.menu.focus == "resume"
    ui.key(Command.BACK)
    assert ui.screen == "playing"


def test_refusals_show_their_words() -> None:
    ui = ui_at()
    ui.open("enroll")
    for _ in range(16):
        ui.key(Command.D7)
    assert ui.menu.focus == "submit"
    ui.key(Command.OK)
    call = ui.calls[-1]
    assert call.request == ctl.EnrollCode(code="7" * 16)
    ui.answer(call, ctl.ControlError(code="code_refused", message="注册码不对或已经用过", message_en="x"))
    assert ui.message == "注册码不对或已经用过"

"""The local control API's handlers: what each `terminal.interface.control` action does to the
running terminal. One home for them, apart from the composition root (`daemon.py`);
`Terminal.control()` hands every request here.

Overlay: libvlc's marquee over the video (title, item n of m, elapsed / total and
remaining, number signed in, an optional line), shown for a request's seconds and
refreshed twice a second meanwhile, hidden by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from shared.timeutil import to_db, utcnow
from terminal import constants as k
from terminal.errors import ItemError, ServerUnreachable, TerminalError
from terminal.interface import control as ctl
from terminal.network import heartbeat
from terminal.network.link import LAST_GOOD
from terminal.playback.player import Player
from terminal.playback.sessions import SessionResult, SessionSpec
from terminal.storage import db as q
from terminal.storage.sync import VILLAGE_NAME, WINDOW_OVERRIDE

if TYPE_CHECKING:
    from terminal.daemon import Terminal


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


class Controls:
    """The control API's handlers for one `Terminal`; `async_close()` stops the overlay."""

    def __init__(self, terminal: Terminal) -> None:
        self.t = terminal
        self._overlay_until = 0.0
        self._overlay_note = ""
        self._overlay_task: asyncio.Task[None] | None = None

    async def async_close(self) -> None:
        if self._overlay_task is not None:
            self._overlay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._overlay_task

    async def _started(self, spec: SessionSpec, task: asyncio.Task[SessionResult],
                       attendees: list[str]) -> ctl.Started:
        """Answer a start only once something plays (or it is clear that nothing will)."""
        def playing_or_over() -> bool:
            return task.done() or (self.t.player is not None and self.t.player.state == "playing")
        with contextlib.suppress(TimeoutError):
            await self.t.wait_until(playing_or_over, timeout=k.START_TIMEOUT)
        if task.done():
            result = task.result()
            if not any(w > 0 for w in result.watched.values()):
                raise ItemError(f"{spec.title!r} 没有播放任何内容 / nothing of {spec.title!r} played "
                                f"(record {result.record_id} counts nowhere)")
            return ctl.Started(title=spec.title, attendees=attendees, state="played",
                               record_id=result.record_id)
        if self.t.player is not None and self.t.player.state == "playing":
            return ctl.Started(title=spec.title, attendees=attendees, state="playing")
        # not playing yet: the CLI must not say "started"
        return ctl.Started(title=spec.title, attendees=attendees, state="starting")

    async def handle(self, action: str, body: object) -> Any:
        """The local control API (`terminal.interface.control`): `body` is the action's request struct
        (a plain dict is decoded into it); the answer is the action's answer struct, or a
        dict of it when a dict came in. Refusals raise `ControlRefused`."""
        as_dict = isinstance(body, dict)
        if as_dict:
            body = ctl.decode_request(action, msgspec.json.encode(body))
        handler = getattr(self, "_" + action.replace("-", "_"), None)
        if handler is None or action not in ctl.ROUTES:
            raise ctl.ControlRefused(404, "no_such_action", f"没有这个操作：{action}",
                                     f"no control {action!r}")
        answer = await handler(body)
        return msgspec.to_builtins(answer) if as_dict else answer

    async def _start(self, r: ctl.StartSession) -> ctl.Started:
        try:
            if r.session_id:
                try:
                    spec = self.t.session_for(r.session_id)
                except LookupError:
                    raise ctl.ControlRefused(422, "no_such_session", "课程表里没有这场放映",
                                             f"no session {r.session_id} in the catalog") from None
                await self.t.resolve_items(spec.items)
            elif r.items:
                spec = SessionSpec(r.title or "站点点播", await self.t.resolve_items(r.items))
            else:
                raise ctl.ControlRefused(422, "nothing_to_play", "请选择要放映的场次或课程",
                                         "name a session_id or the items to play")
        except ItemError as e:
            raise ctl.ControlRefused(422, "items", f"课程不能放映：{e}", str(e)) from e
        if self.t.session_running:
            raise ctl.refused("session_running", "已经在放映，请先结束当前放映",
                              "a session is already running")
        runner = await self.t.session_runner()
        assert self.t.player is not None
        self.t.player.xwindow = r.xwindow
        try:
            member_nos = await runner.sign_in(r.attendees)
            task = await self.t.start_session(spec, member_nos)
        except TerminalError as e:
            raise ctl.ControlRefused(422, "sign_in", f"签到失败：{e}", str(e)) from e
        try:
            return await self._started(spec, task, member_nos)
        except ItemError as e:
            raise ctl.ControlRefused(422, "nothing_played", "没有播放任何内容，这次不计入记录", str(e)) from e

    async def _attend(self, r: ctl.Attend) -> ctl.Attendees:
        runner = self.t.runner
        if runner is None or not self.t.session_running:
            raise ctl.refused("not_running", "现在没有放映", "no session is running")
        try:
            runner.add_attendees(await runner.sign_in(r.attendees))
        except TerminalError as e:
            raise ctl.ControlRefused(422, "sign_in", f"签到失败：{e}", str(e)) from e
        self.t.notify()
        return ctl.Attendees(attendees=list(runner.attendees))

    async def _window(self, r: ctl.OpenWindow) -> ctl.WindowOpen:
        until = utcnow() + timedelta(hours=r.hours)
        await self.t.db.write(lambda c: q.set_kv(c, WINDOW_OVERRIDE, to_db(until)))
        self.t.wake_sync()
        return ctl.WindowOpen(window_open_until=to_db(until))

    def _playing(self) -> Player:
        if self.t.player is None or not self.t.session_running:
            raise ctl.refused("not_playing", "现在没有放映", "nothing is playing")
        return self.t.player

    async def _pause(self, _r: ctl.Nothing) -> ctl.Done:
        await self._playing().pause()
        return ctl.Done(action="pause")

    async def _resume(self, _r: ctl.Nothing) -> ctl.Done:
        await self._playing().resume()
        return ctl.Done(action="resume")

    async def _toggle(self, _r: ctl.Nothing) -> ctl.Done:
        player = self._playing()
        await (player.resume() if player.state == "paused" else player.pause())
        return ctl.Done(action="toggle")

    async def _seek(self, r: ctl.Seek) -> ctl.Done:
        player = self._playing()
        stats = player.stats
        here = stats.position_seconds if stats else 0.0
        to = r.seconds if r.seconds is not None else here + (r.delta or 0.0)
        if player.duration > 0:
            to = min(to, max(0.0, player.duration - 0.5))
        await player.seek(max(0.0, to))
        return ctl.Done(action="seek")

    async def _next(self, _r: ctl.Nothing) -> ctl.Done:
        await self._playing().stop()  # the session goes on with its next item
        return ctl.Done(action="next")

    async def _stop(self, _r: ctl.Nothing) -> ctl.Done:
        self._playing()
        assert self.t.session_task is not None
        self.t.session_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TerminalError):
            await self.t.session_task
        return ctl.Done(action="stop")

    async def _volume(self, r: ctl.Volume) -> ctl.Done:
        player = self._playing()
        await player.set_volume(r.level if r.level is not None else player.volume + (r.delta or 0))
        await self._overlay(ctl.Overlay(note=f"音量 {player.volume}"))
        return ctl.Done(action="volume")

    async def _overlay(self, r: ctl.Overlay) -> ctl.Done:
        self._playing()
        self._overlay_until = time.monotonic() + r.seconds
        self._overlay_note = r.note
        if self._overlay_task is None or self._overlay_task.done():
            self._overlay_task = asyncio.create_task(self._keep_overlay(), name="terminal-overlay")
        await self._draw_overlay()
        return ctl.Done(action="overlay")

    def overlay_text(self) -> str | None:
        """The overlay's words (title, elapsed / total and remaining, signed in), or None."""
        runner, player = self.t.runner, self.t.player
        if runner is None or runner.current is None or player is None or player.stats is None:
            return None
        pos, total = player.stats.position_seconds, player.duration
        spec = runner.current
        where = spec.items.index(player.stats.sha256) + 1 if player.stats.sha256 in spec.items else 1
        paused = "  已暂停" if player.state == "paused" else ""
        text = (f"{spec.title}（第 {where}/{len(spec.items)} 部）{paused}\n"
                f"{_clock(pos)} / {_clock(total)}  剩余 {_clock(max(0.0, total - pos))}  "
                f"已签到 {len(runner.attendees)} 人")
        return text + (f"\n{self._overlay_note}" if self._overlay_note else "")

    @property
    def overlay_shown(self) -> bool:
        return self.t.session_running and time.monotonic() < self._overlay_until

    async def _draw_overlay(self) -> None:
        if self.t.player is not None:
            await self.t.player.overlay(self.overlay_text() if self.overlay_shown else None)

    async def _keep_overlay(self) -> None:
        # refreshed twice a second while shown, so the times move; hidden by itself after
        while self.overlay_shown:
            await asyncio.sleep(0.5)
            with contextlib.suppress(RuntimeError, AttributeError):
                await self._draw_overlay()
        self._overlay_note = ""
        with contextlib.suppress(RuntimeError, AttributeError):
            await self._draw_overlay()
        self.t.notify()

    async def _enroll(self, r: ctl.EnrollCode) -> ctl.Enrolled:
        from terminal.network.enroll import enroll

        code = "".join(ch for ch in r.code if ch.isalnum())
        stored: str | None = await self.t.db.read(lambda c: q.get_kv(c, LAST_GOOD))
        url = r.server_url or self.t.config.server_url or stored or ""
        if not url and self.t.discovery is not None:
            await self.t.discovery.async_wait(self.t.config.discovery_timeout)
            url = next((c.url for c in self.t.discovery.servers.values()), "")
        if not url:
            raise ctl.ControlRefused(502, "no_server",
                                     "找不到县里的服务器：请检查网线，或在设置里填写服务器地址",
                                     "no server found by mDNS and none configured")
        assert self.t.http is not None
        try:
            answer = await enroll(self.t.http, self.t.db, url, code)
        except ServerUnreachable as e:
            raise ctl.ControlRefused(502, "unreachable", "连不上县里的服务器，请检查网络后再试",
                                     str(e)) from e
        except TerminalError as e:
            raise ctl.ControlRefused(422, "code_refused", "注册码不对或已经用过，请向县里要一个新的注册码",
                                     str(e)) from e
        await self.t.db.write(lambda c: q.set_kv(c, VILLAGE_NAME, answer.village_name))
        self.t.notify()
        return ctl.Enrolled(terminal_id=answer.terminal_id, village_name=answer.village_name,
                            server_name=answer.server_name)

    async def _usb(self, r: ctl.UsbImport) -> ctl.UsbResult:
        report = await self.t.usb_exchange(Path(r.directory))
        return ctl.UsbResult(usb=msgspec.to_builtins(report), complete=report.complete)

    async def _link_test(self, _r: ctl.Nothing) -> ctl.LinkTest:
        if self.t.link is None:
            return ctl.LinkTest(ok=False, server_url=None, milliseconds=0, message="连接未启动")
        started = time.monotonic()
        try:
            async with asyncio.timeout(15):
                client = await self.t.link.get()
                await client.heartbeat(heartbeat.build(await self.t.snapshot(), self.t.clock.now()))
        except (TerminalError, TimeoutError) as e:
            if isinstance(e, ServerUnreachable):
                self.t.link.lost(e)
            ms = (time.monotonic() - started) * 1000
            return ctl.LinkTest(ok=False, server_url=None, milliseconds=round(ms, 1),
                                message=f"连不上县里的服务器（{e}）")
        ms = (time.monotonic() - started) * 1000
        return ctl.LinkTest(ok=True, server_url=client.base_url, milliseconds=round(ms, 1),
                            message=f"连接正常，往返 {ms:.0f} 毫秒")

    async def roster(self) -> ctl.RosterAnswer:
        members, name = await self.t.db.read(lambda c: (q.roster(c), q.get_kv(c, VILLAGE_NAME)))
        return ctl.RosterAnswer(village_name=name or "", members=members)

"""`yuanjiao-terminal`: run the terminal, look at it, hold a session.

    yuanjiao-terminal run      [--config FILE] [flags]   the daemon (discovery, sync,
                                                         heartbeat, outbox, sessions)
    yuanjiao-terminal status   [--json]                  server, cache, downloads, backlog
    yuanjiao-terminal session  --member NO|NAME ... (--session-id ID | --item SHA256 ...)
    yuanjiao-terminal enroll   CODE [--server-url URL]   trade the county's one-time code
                                                         for this box's id, token and key
    yuanjiao-terminal window   [--hours H]               open the download window now
    yuanjiao-terminal settings                           every setting, its default and help

`session` and `window` go through the running daemon's local controls when it is
running, and otherwise do the work in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec

from shared.sqlite import Database
from shared.timeutil import to_db, utcnow
from terminal import constants as k
from terminal import sdnotify
from terminal.config import TerminalConfig, describe, load_config
from terminal.interface import progress
from terminal.interface.control import ControlError, Started
from terminal.interface.snapshot import ItemStatus, NextSession, Snapshot
from terminal.storage import db as q
from terminal.storage.migrations import MIGRATIONS
from terminal.storage.scrub import shown_state

log = logging.getLogger("terminal")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="yuanjiao-terminal",
                                description="远教村级终端 Yuanjiao village terminal")
    p.add_argument("--version", action="version", version=k.SOFTWARE_VERSION)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", type=Path, help="TOML settings file")
        sp.add_argument("--data-dir", type=Path, help="database, cache and pinned key")
        sp.add_argument("--terminal-id", help="this terminal point's id, e.g. T140121100001")
        sp.add_argument("--status-port", type=int, help="port of the status endpoint")
        sp.add_argument("-v", "--verbose", action="store_true")

    run = sub.add_parser("run", help="运行终端程序 run the terminal daemon")
    common(run)
    run.add_argument("--server-url", help="fallback server URL when mDNS finds nothing")
    run.add_argument("--status-host", help="address of the status endpoint")
    run.add_argument("--zeroconf-interfaces", help="comma-separated addresses for mDNS, or 'all'")
    run.add_argument("--no-zeroconf", action="store_true", help="do not use mDNS")
    run.add_argument("--bandwidth-limit", type=int, help="download cap, bytes per second")
    run.add_argument("--download-window", help="e.g. 22:00-06:00 (county time); empty: always")
    run.add_argument("--cache-quota-bytes", type=int, help="most bytes the cache may hold")
    run.add_argument("--progress-log-seconds", type=float, help="log download progress this often")
    run.add_argument("--headless", action="store_true", help="no video or audio output")
    run.add_argument("--no-progress", action="store_true", help="no progress bars even on a terminal")

    st = sub.add_parser("status", help="终端状态：服务器、缓存、下载、场次、名册 status")
    common(st)
    st.add_argument("--json", action="store_true", help="以 JSON 输出 print the snapshot as JSON")

    se = sub.add_parser("session", help="签到并放映 sign members in and play a session")
    common(se)
    se.add_argument("--member", action="append", default=[],
                    help="党员编号或姓名，可重复 member number or name (repeat)")
    se.add_argument("--session-id", help="课程表里的场次 a session scheduled in the catalog")
    se.add_argument("--item", action="append", default=[],
                    help="已缓存课程的 sha256，可重复 a cached item (repeat)")
    se.add_argument("--title", default="站点点播", help="title of an unscheduled session")
    se.add_argument("--headless", action="store_true", help="no video or audio output")
    se.add_argument("--rate", type=float, help="playback rate")

    en = sub.add_parser("enroll", help="用县里给的注册码注册终端 enroll with the county's code")
    common(en)
    en.add_argument("code", help="县里给的 16 位注册码 the county's code")
    en.add_argument("--server-url", help="the county server (found by mDNS when not given)")
    en.add_argument("--zeroconf-interfaces", help="comma-separated addresses for mDNS, or 'all'")
    en.add_argument("--tls-fingerprint",
                    help="sha256 of the server's certificate, when it is self-signed (https only)")

    wi = sub.add_parser("window", help="现在开放下载 open the download window now")
    common(wi)
    wi.add_argument("--hours", type=float, default=6.0)

    tv = sub.add_parser("tv", help="电视界面（遥控器操作） the TV interface")
    common(tv)
    tv.add_argument("--status-url", help="the daemon's local endpoint (default http://127.0.0.1:<status_port>)")
    tv.add_argument("--size", default="1920x1080", help="window size, WIDTHxHEIGHT")
    tv.add_argument("--windowed", action="store_true", help="an ordinary window (development), not the kiosk")
    tv.add_argument("--input-device", action="append", default=[],
                    help="a /dev/input/event* device to read keys from (repeat); 'auto': every keyboard; "
                         "default: none (keys come through X)")

    us = sub.add_parser("usb", help="U 盘：导入内容、写回签到记录 "
                                    "USB stick: import content, write back attendance")
    us_sub = us.add_subparsers(dest="usb_command", required=True)
    ui = us_sub.add_parser("import", help="take in what verifies from a stick and write the "
                                          "returns onto it (through the daemon when it runs)")
    common(ui)
    ui.add_argument("directory", type=Path, help="where the stick is mounted")
    ui.add_argument("--json", action="store_true", help="print the report as JSON")

    sub.add_parser("settings", help="列出全部设置 list every setting")
    return p


def _config(args: argparse.Namespace) -> TerminalConfig:
    overrides: dict[str, Any] = {}
    for name in ("data_dir", "terminal_id", "status_port", "server_url", "status_host",
                 "zeroconf_interfaces", "bandwidth_limit", "download_window", "cache_quota_bytes",
                 "progress_log_seconds"):
        overrides[name] = getattr(args, name, None)
    if getattr(args, "no_zeroconf", False):
        overrides["zeroconf"] = False
    if getattr(args, "headless", False):
        overrides["headless"] = True
    if getattr(args, "rate", None):
        overrides["playback_rate"] = args.rate
    return load_config(args.config, overrides=overrides)


# --- run --------------------------------------------------------------------------------


async def _wait_for_enrollment(database: Database, stop: asyncio.Event) -> None:
    from terminal.network.enroll import stored_identity

    while True:
        terminal_id, _token = await stored_identity(database)
        if terminal_id:
            log.info("enrolled as %s; restarting as that terminal", terminal_id)
            stop.set()
            return
        await asyncio.sleep(k.ENROLLMENT_POLL_SECONDS)


async def _watchdog() -> None:
    # the event loop turns: tell systemd (WatchdogSec restarts a daemon that hangs)
    every = sdnotify.watchdog_interval() or 10.0
    while True:
        sdnotify.notify("WATCHDOG=1")
        await asyncio.sleep(every)


async def _run(config: TerminalConfig, bars: bool) -> int:
    from terminal.daemon import Terminal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Terminal(config) as terminal:
        sdnotify.notify("READY=1")
        pinger = asyncio.create_task(_watchdog()) if sdnotify.watchdog_interval() else None
        drawer = asyncio.create_task(progress.show(terminal.snapshot)) if bars else None
        watcher = None
        if not config.terminal_id:
            # Not enrolled: advertise and wait. Once `enroll` has stored an identity, stop
            # so the service manager starts the daemon again as that terminal.
            log.warning("not enrolled yet: advertising this box and waiting for "
                        "`yuanjiao-terminal enroll CODE`")
            watcher = asyncio.create_task(_wait_for_enrollment(terminal.db, stop))
        await stop.wait()
        log.info("stopping")
        if watcher is not None:
            watcher.cancel()
        if pinger is not None:
            pinger.cancel()
        if drawer is not None:
            drawer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drawer
    return 0


# --- status -----------------------------------------------------------------------------


async def _daemon(
    config: TerminalConfig, method: str, path: str, body: Any = None, *, timeout: float = 5.0,
) -> Any:
    """Ask the local daemon; None when it is not running."""
    import aiohttp  # here, not at the top: the TV interface runs through this module without it

    url = f"http://127.0.0.1:{config.status_port}{path}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http, \
                http.request(method, url, json=body) as resp:
            body = await resp.read()
            if resp.status >= 400:
                try:
                    e = msgspec.json.decode(body, type=ControlError)
                    raise SystemExit(f"终端拒绝了：{e.message}\nthe terminal refused: {e.message_en}")
                except msgspec.DecodeError:
                    raise SystemExit(f"终端拒绝了 / the terminal refused: {body.decode(errors='replace')}") \
                        from None
            return msgspec.json.decode(body)
    except aiohttp.ClientConnectionError:
        return None
    except TimeoutError:
        # it is running but slow: doing the work here as well could do it twice
        raise SystemExit("终端程序在运行，但没有及时回答；请看 `yuanjiao-terminal status`\n"
                         "the running terminal did not answer in time; "
                         "see `yuanjiao-terminal status`") from None


async def _offline_snapshot(config: TerminalConfig) -> Snapshot:
    async with Database(config.db_path, MIGRATIONS) as database:
        rows, counts, fp, version, refusal = await database.read(lambda c: (
            q.items(c), q.record_counts(c), q.get_kv(c, "pinned_fingerprint"), q.get_kv(c, "catalog_raw"),
            q.held_refusal(c),
        ))
        last_good, members = await database.read(lambda c: (q.get_kv(c, "last_good_url"), len(q.roster(c))))
    catalog_version = None
    scheduled: list[NextSession] = []
    if version:
        from shared.protocol import Catalog
        from shared.timeutil import to_db as when

        catalog = msgspec.json.decode(version, type=Catalog)
        catalog_version = catalog.version
        ready = {r.sha256 for r in rows if r.state == "ready"}
        for plan in sorted(catalog.sessions, key=lambda p: p.starts_at):
            missing = sum(1 for sha in plan.items if sha not in ready)
            scheduled.append(NextSession(session_id=plan.session_id, title=plan.title,
                                         starts_at=when(plan.starts_at), items=list(plan.items),
                                         ready=missing == 0, missing=missing))
    used = sum(r.bytes_present for r in rows)
    return Snapshot(
        terminal_id=config.terminal_id, village_code=config.village_code,
        software_version=k.SOFTWARE_VERSION, condition="daemon not running",
        server_url=last_good, server_fingerprint=fp, catalog_version=catalog_version,
        catalog_expires_at=None, catalog_stale=False, download_window=config.download_window or "always",
        window_open=True, bandwidth_limit=config.bandwidth_limit, cache_bytes=used,
        cache_quota=config.cache_quota_bytes, disk_free=0, disk_total=0,
        items=[ItemStatus(sha256=r.sha256, title=r.title, size=r.size,
                          state=shown_state(r, utcnow(), config.scrub_interval),
                          bytes_present=r.bytes_present, assigned=r.assigned, needed_by=r.needed_by,
                          resumed_from=r.resumed_from, error=r.error) for r in rows],
        outbox_backlog=counts["closed"] + counts["open"], outbox_quarantined=counts["quarantined"],
        outbox_problem=refusal,
        scheduled=scheduled, roster_members=members, enrolled=bool(config.terminal_id),
    )


def _local(rfc3339: str | None) -> str:
    from terminal.interface.tv.screens import local_time

    return local_time(rfc3339) if rfc3339 else "-"


STATES = {"ready": "可以放映 ready", "downloading": "下载中 downloading", "queued": "排队 queued",
          "verifying": "校验中 verifying", "corrupt": "已损坏 corrupt", "failed": "失败 failed"}


def _print_status(s: Snapshot) -> None:
    """Chinese first, English second; everything `session` needs is printed in full."""
    print(f"终端 terminal    {s.terminal_id or '未注册 not enrolled'}  村 village {s.village_name or ''} "
          f"{s.village_code}  版本 v{s.software_version}")
    print(f"状态 condition   {'正常 ok' if s.condition == 'ok' else s.condition}")
    for p in s.problems:
        print(f"  ⚠ {p.message}：{p.action}  ({p.code})")
    print(f"服务器 server    {s.server_url or '-'}  密钥 key {s.server_fingerprint or '未固定 not pinned'}")
    print(f"课程表 catalog   版本 version {s.catalog_version if s.catalog_version is not None else '-'}"
          f"{'  已过期 (stale)' if s.catalog_stale else ''}")
    window = "全天 always" if s.download_window in ("", "always") else s.download_window
    print(f"下载 downloads   时段 window {window}（{'开放 open' if s.window_open else '关闭 closed'}），"
          f"限速 cap {progress.human(s.bandwidth_limit) + '/s' if s.bandwidth_limit else '不限 none'}")
    print(f"缓存 cache       {progress.human(s.cache_bytes)} / {progress.human(s.cache_quota)}")
    for i in s.items:
        if i.state == "downloading":
            line = progress.item_line(i)
        else:
            line = f"{(i.title or '-')[:20]:<20} {STATES.get(i.state, i.state)}" \
                   f"{'' if i.assigned else '（已撤下 unassigned）'}  --item {i.sha256}"
        print("  " + line + (f"  续传自 resumed from byte {i.resumed_from}" if i.resumed_from else ""))
    print(f"场次 sessions    {len(s.scheduled)} 场待放映 scheduled")
    for n in s.scheduled:
        ready = "已准备好 ready" if n.ready else f"缺 {n.missing} 部 {n.missing} item(s) missing"
        print(f"  {_local(n.starts_at)}  {n.title}  {ready}  --session-id {n.session_id}")
    print(f"名册 roster      {s.roster_members} 名党员 members（签到用 --member 编号或姓名 number or name）")
    print(f"待发 outbox      {s.outbox_backlog} 条等待上传 waiting, "
          f"{s.outbox_quarantined} 条被拒、稍后重发 held (refused, offered again later)")
    if s.outbox_problem:
        print(f"  最近一次拒收 last refusal: {s.outbox_problem}")
    clock = "已由服务器核对 confirmed by the server" if s.clock_confirmed else \
        "未经服务器核对 not confirmed by the server"
    if s.clock_error_seconds is not None and not s.clock_confirmed:
        clock += f"（相差 off by {s.clock_error_seconds:+.0f} s）"
    print(f"时钟 clock       {clock}")
    if s.session is not None:
        print(f"放映 session     {s.session.title}：{s.session.state}，已签到 {len(s.session.attendees)} 人 "
              f"attendee(s)")
    elif s.scheduled or any(i.state == "ready" for i in s.items):
        example = f"--session-id {s.scheduled[0].session_id}" if s.scheduled else \
            f"--item {next(i.sha256 for i in s.items if i.state == 'ready')}"
        print(f"开始放映 start   yuanjiao-terminal session {example} --member 1 --member 李娜")


async def _status(config: TerminalConfig, as_json: bool) -> int:
    raw = await _daemon(config, "GET", "/status")
    snap = msgspec.convert(raw, Snapshot) if raw is not None else await _offline_snapshot(config)
    if as_json:
        print(msgspec.json.encode(snap).decode())
    else:
        _print_status(snap)
    return 0


# --- session ----------------------------------------------------------------------------


async def _session(config: TerminalConfig, args: argparse.Namespace) -> int:
    from terminal.daemon import Terminal
    from terminal.errors import TerminalError
    from terminal.playback.sessions import SessionSpec

    if not args.session_id and not args.item:
        raise SystemExit("请用 --session-id 指定场次，或用 --item 指定课程（`status` 会列出）\n"
                         "name a --session-id from the catalog or the --item(s) to play")
    body: dict[str, object] = {"attendees": args.member, "title": args.title}
    if args.session_id:
        body["session_id"] = args.session_id
    else:
        body["items"] = args.item
    answer = await _daemon(config, "POST", "/control/start", body, timeout=k.START_TIMEOUT + 10)
    if answer is not None:
        started = msgspec.convert(answer, Started)
        people = f"已签到 {len(started.attendees)} 人"
        if started.state == "playing":
            print(f"终端已开始放映「{started.title}」，{people}\n"
                  f"the running terminal started {started.title!r}: it is playing")
        elif started.state == "played":
            print(f"终端已放完「{started.title}」，{people}\n"
                  f"the running terminal played {started.title!r} (record {started.record_id})")
        else:
            print(f"已请终端开始「{started.title}」，还没有开始播放（看 `yuanjiao-terminal status`）\n"
                  f"asked the running terminal to start {started.title!r}; "
                  "it is not playing yet (see `yuanjiao-terminal status`)")
        return 0
    terminal = Terminal(config)
    await terminal.async_start(background=False)
    try:
        spec = terminal.session_for(args.session_id) if args.session_id else \
            SessionSpec(args.title, await terminal.resolve_items(args.item))
        if args.session_id:
            await terminal.resolve_items(spec.items)
        result = await terminal.run_session(spec, args.member)
    except (TerminalError, LookupError) as e:
        raise SystemExit(f"出错了 / error: {e}") from None
    finally:
        await terminal.async_close()
    print(f"放映结束，记录已保存：{len(result.attendees)} 人签到\n"
          f"record {result.record_id} (seq {result.seq}), {len(result.attendees)} attendee(s)")
    for sha, watched in result.watched.items():
        print(f"  {sha[:12]}  观看 watched {watched:.1f} s")
    for sha in result.skipped:
        print(f"  {sha[:12]}  跳过：缓存里没有校验通过的文件 (skipped: not verified in the cache)")
    if not any(w > 0 for w in result.watched.values()):
        print("什么也没有播放，这次不计入记录 / nothing played: this session counts nowhere", file=sys.stderr)
        return 1
    return 0


async def _window(config: TerminalConfig, hours: float) -> int:
    answer = await _daemon(config, "POST", "/control/window", {"hours": hours})
    if answer is None:
        until = to_db(utcnow() + timedelta(hours=hours))
        async with Database(config.db_path, MIGRATIONS) as database:
            await database.write(lambda c: q.set_kv(c, "window_override_until", until))
        answer = {"window_open_until": until}
    print(f"下载窗口开放到 {_local(answer['window_open_until'])}（北京时间）\n"
          f"downloads may run until {answer['window_open_until']}")
    return 0


async def _usb(config: TerminalConfig, directory: Path, as_json: bool) -> int:
    import aiohttp

    from terminal.daemon import Terminal

    stick = directory  # resolved by main(), off the loop
    url = f"http://127.0.0.1:{config.status_port}/control/usb"
    answer: dict[str, Any] | None = None
    try:  # a stick can take minutes: no overall timeout, only for the connection
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=3)) \
                as http, http.post(url, json={"directory": str(stick)}) as resp:
            text = await resp.text()
            if resp.status >= 400:
                print(f"yuanjiao-terminal: the terminal refused: {text}", file=sys.stderr)
                return 1
            answer = msgspec.json.decode(text)["usb"]
    except aiohttp.ClientConnectorError:
        terminal = Terminal(config)
        await terminal.async_start(background=False)
        try:
            answer = msgspec.to_builtins(await terminal.usb_exchange(stick))
        finally:
            await terminal.async_close()
    assert answer is not None
    if as_json:
        print(msgspec.json.encode(answer).decode())
    else:
        print(f"目录 catalog: {answer['catalog']}")
        print(f"已导入 imported: {len(answer['imported'])}")
        for sha, present in answer["missing"].items():
            print(f"  缺少 missing {sha[:12]} (have {present} bytes)")
        for sha, why in answer["damaged"].items():
            print(f"  损坏 damaged {sha[:12]}: {why}")
        for sha, why in answer["skipped"].items():
            print(f"  跳过 skipped {sha[:12]}: {why}")
        print(f"写回记录 attendance written back: {answer['records_written']}")
        if answer["returns_error"]:
            print(f"  {answer['returns_error']}")
    done = not (answer["missing"] or answer["damaged"] or answer["skipped"] or answer["returns_error"])
    return 0 if done else 3


async def _with_enrolled_id(config: TerminalConfig) -> TerminalConfig:
    from terminal.network.enroll import stored_identity

    if not config.db_path.exists():
        return config
    async with Database(config.db_path, MIGRATIONS) as database:
        terminal_id, _token = await stored_identity(database)
    return config.replace(terminal_id=terminal_id, village_code="") if terminal_id else config


async def _enroll(config: TerminalConfig, code: str, tls_pin: str | None = None) -> int:
    import aiohttp

    from terminal.errors import TerminalError
    from terminal.network.discovery import Discovery
    from terminal.network.enroll import enroll

    url = config.server_url
    if not url and config.zeroconf:
        async with Discovery(interfaces=config.zeroconf_interfaces, terminal_id="",
                             village="") as discovery:
            await discovery.async_wait(max(config.discovery_timeout, 5.0))
            url = next((c.url for c in discovery.servers.values()), "")
    if not url:
        print("yuanjiao-terminal: 找不到县里的服务器，请用 --server-url 指定\n"
              "no server found by mDNS; give --server-url", file=sys.stderr)
        return 1
    async with Database(config.db_path, MIGRATIONS) as database, aiohttp.ClientSession() as http:
        try:
            answer = await enroll(http, database, url, code, tls_pin)
        except TerminalError as e:
            print(f"yuanjiao-terminal: 注册失败：注册码不对、已用过或连不上服务器\nenrollment failed: {e}",
                  file=sys.stderr)
            return 1
    print(f"注册成功：终端 {answer.terminal_id}，{answer.village_name}（{answer.village_code}）；"
          f"服务器 {answer.server_name}\n"
          f"enrolled: terminal {answer.terminal_id}, {answer.village_name} ({answer.village_code}); "
          f"server {answer.server_name}, key {answer.key_fingerprint}")
    return 0


def _tv(config: TerminalConfig, args: argparse.Namespace) -> int:
    from terminal.interface.tv import app
    from terminal.interface.tv.api import DaemonApi
    from terminal.interface.tv.keys import KeyMap, keyboard_devices

    try:
        width, height = (int(n) for n in args.size.lower().split("x"))
    except ValueError:
        print(f"yuanjiao-terminal: 尺寸写法是 宽x高，例如 1920x1080 (bad --size {args.size!r})",
              file=sys.stderr)
        return 2
    devices: list[Path] = []
    for name in args.input_device:
        devices += keyboard_devices() if name == "auto" else [Path(name)]
    url = args.status_url or f"http://127.0.0.1:{config.status_port}"
    app.run(DaemonApi(url), KeyMap(config.data_dir / "remote-keys.json"), size=(width, height),
            kiosk=not args.windowed, devices=devices)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "settings":
        print(describe())
        return 0
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = _config(args)
    except (OSError, ValueError) as e:
        print(f"yuanjiao-terminal: 设置有误 / bad settings: {e}", file=sys.stderr)
        return 2
    if args.command == "enroll":
        return asyncio.run(_enroll(config, args.code, args.tls_fingerprint))
    if args.command == "tv":
        return _tv(config, args)
    if not config.terminal_id:
        config = asyncio.run(_with_enrolled_id(config))
    if not config.terminal_id and args.command != "run":
        print("yuanjiao-terminal: 这台终端还没有注册：请运行 `yuanjiao-terminal enroll 注册码`\n"
              "this box is not enrolled: run `yuanjiao-terminal enroll CODE` "
              "(or set terminal_id)", file=sys.stderr)
        return 2
    if args.command == "run":
        return asyncio.run(_run(config, bars=sys.stdout.isatty() and not args.no_progress))
    if args.command == "status":
        return asyncio.run(_status(config, args.json))
    if args.command == "session":
        return asyncio.run(_session(config, args))
    if args.command == "window":
        return asyncio.run(_window(config, args.hours))
    if args.command == "usb":
        return asyncio.run(_usb(config, args.directory.resolve(), args.json))
    return 2

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

import aiohttp
import msgspec

from shared.sqlite import Database
from shared.timeutil import to_db, utcnow
from terminal import constants as k
from terminal import db as q
from terminal import progress
from terminal.config import TerminalConfig, describe, load_config
from terminal.migrations import MIGRATIONS
from terminal.status import ItemStatus, Snapshot

log = logging.getLogger("terminal")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="yuanjiao-terminal", description="Yuanjiao village terminal")
    p.add_argument("--version", action="version", version=k.SOFTWARE_VERSION)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", type=Path, help="TOML settings file")
        sp.add_argument("--data-dir", type=Path, help="database, cache and pinned key")
        sp.add_argument("--terminal-id", help="this terminal point's id, e.g. T140121100001")
        sp.add_argument("--status-port", type=int, help="port of the status endpoint")
        sp.add_argument("-v", "--verbose", action="store_true")

    run = sub.add_parser("run", help="run the terminal daemon")
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

    st = sub.add_parser("status", help="server, cache, downloads, backlog")
    common(st)
    st.add_argument("--json", action="store_true", help="print the snapshot as JSON")

    se = sub.add_parser("session", help="sign members in and play a session")
    common(se)
    se.add_argument("--member", action="append", default=[], help="member number or name (repeat)")
    se.add_argument("--session-id", help="a session scheduled in the catalog")
    se.add_argument("--item", action="append", default=[], help="sha256 of a cached item (repeat)")
    se.add_argument("--title", default="站点点播", help="title of an unscheduled session")
    se.add_argument("--headless", action="store_true", help="no video or audio output")
    se.add_argument("--rate", type=float, help="playback rate")

    en = sub.add_parser("enroll", help="trade the county's one-time code for this box's identity")
    common(en)
    en.add_argument("code", help="the code the county admin made for this terminal point")
    en.add_argument("--server-url", help="the county server (found by mDNS when not given)")
    en.add_argument("--zeroconf-interfaces", help="comma-separated addresses for mDNS, or 'all'")
    en.add_argument("--tls-fingerprint",
                    help="sha256 of the server's certificate, when it is self-signed (https only)")

    wi = sub.add_parser("window", help="open the download window now (site manager override)")
    common(wi)
    wi.add_argument("--hours", type=float, default=6.0)

    us = sub.add_parser("usb", help="USB stick: import content, write back attendance")
    us_sub = us.add_subparsers(dest="usb_command", required=True)
    ui = us_sub.add_parser("import", help="take in what verifies from a stick and write the "
                                          "returns onto it (through the daemon when it runs)")
    common(ui)
    ui.add_argument("directory", type=Path, help="where the stick is mounted")
    ui.add_argument("--json", action="store_true", help="print the report as JSON")

    sub.add_parser("settings", help="list every setting")
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
    from terminal.enroll import stored_identity

    while True:
        terminal_id, _token = await stored_identity(database)
        if terminal_id:
            log.info("enrolled as %s; restarting as that terminal", terminal_id)
            stop.set()
            return
        await asyncio.sleep(k.ENROLLMENT_POLL_SECONDS)


async def _run(config: TerminalConfig, bars: bool) -> int:
    from terminal.daemon import Terminal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Terminal(config) as terminal:
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
        if drawer is not None:
            drawer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drawer
    return 0


# --- status -----------------------------------------------------------------------------


async def _daemon(config: TerminalConfig, method: str, path: str, body: Any = None) -> Any:
    """Ask the local daemon; None when it is not running."""
    url = f"http://127.0.0.1:{config.status_port}{path}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http, \
                http.request(method, url, json=body) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise SystemExit(f"the terminal refused: {text}")
            return msgspec.json.decode(text)
    except (aiohttp.ClientConnectionError, TimeoutError):
        return None


async def _offline_snapshot(config: TerminalConfig) -> Snapshot:
    async with Database(config.db_path, MIGRATIONS) as database:
        rows, counts, fp, version = await database.read(lambda c: (
            q.items(c), q.record_counts(c), q.get_kv(c, "pinned_fingerprint"), q.get_kv(c, "catalog_raw"),
        ))
        last_good = await database.read(lambda c: q.get_kv(c, "last_good_url"))
    catalog_version = None
    if version:
        catalog_version = msgspec.json.decode(version).get("version")
    used = sum(r.bytes_present for r in rows)
    return Snapshot(
        terminal_id=config.terminal_id, village_code=config.village_code,
        software_version=k.SOFTWARE_VERSION, condition="daemon not running",
        server_url=last_good, server_fingerprint=fp, catalog_version=catalog_version,
        catalog_expires_at=None, catalog_stale=False, download_window=config.download_window or "always",
        window_open=True, bandwidth_limit=config.bandwidth_limit, cache_bytes=used,
        cache_quota=config.cache_quota_bytes, disk_free=0, disk_total=0,
        items=[ItemStatus(sha256=r.sha256, title=r.title, size=r.size, state=r.state,
                          bytes_present=r.bytes_present, assigned=r.assigned, needed_by=r.needed_by,
                          resumed_from=r.resumed_from, error=r.error) for r in rows],
        outbox_backlog=counts["closed"] + counts["open"], outbox_quarantined=counts["quarantined"],
    )


def _print_status(s: Snapshot) -> None:
    print(f"终端 terminal   {s.terminal_id}  village {s.village_code}  v{s.software_version}")
    print(f"状态 condition  {s.condition}")
    print(f"服务器 server   {s.server_url or '-'}  key {s.server_fingerprint or 'not pinned'}")
    print(f"节目单 catalog  version {s.catalog_version if s.catalog_version is not None else '-'}"
          f"{'  (stale)' if s.catalog_stale else ''}")
    print(f"下载 downloads  window {s.download_window} ({'open' if s.window_open else 'closed'}), "
          f"cap {progress.human(s.bandwidth_limit) + '/s' if s.bandwidth_limit else 'none'}")
    print(f"缓存 cache      {progress.human(s.cache_bytes)} of {progress.human(s.cache_quota)}")
    for i in s.items:
        line = progress.item_line(i) if i.state == "downloading" else \
            f"{(i.title or i.sha256[:12])[:24]:<24} {i.state}{'' if i.assigned else ' (unassigned)'}"
        print("  " + line + (f"  resumed from byte {i.resumed_from}" if i.resumed_from else ""))
    print(f"待发 outbox     {s.outbox_backlog} record(s) waiting, {s.outbox_quarantined} quarantined")
    if s.session is not None:
        print(f"放映 session    {s.session.title}: {s.session.state}, {len(s.session.attendees)} attendee(s)")


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
    from terminal.sessions import SessionSpec

    if not args.session_id and not args.item:
        raise SystemExit("name a --session-id from the catalog or the --item(s) to play")
    body: dict[str, object] = {"attendees": args.member, "title": args.title}
    if args.session_id:
        body["session_id"] = args.session_id
    else:
        body["items"] = args.item
    started = await _daemon(config, "POST", "/control/start", body)
    if started is not None:
        print(f"the running terminal started {started['started']!r}")
        return 0
    terminal = Terminal(config)
    await terminal.async_start(background=False)
    try:
        spec = terminal.session_for(args.session_id) if args.session_id else \
            SessionSpec(args.title, list(args.item))
        result = await terminal.run_session(spec, args.member)
    finally:
        await terminal.async_close()
    print(f"record {result.record_id} (seq {result.seq}), {len(result.attendees)} attendee(s)")
    for sha, watched in result.watched.items():
        print(f"  {sha[:12]}  watched {watched:.1f} s")
    for sha in result.skipped:
        print(f"  {sha[:12]}  skipped: not verified in the cache")
    return 0


async def _window(config: TerminalConfig, hours: float) -> int:
    answer = await _daemon(config, "POST", "/control/window", {"hours": hours})
    if answer is None:
        until = to_db(utcnow() + timedelta(hours=hours))
        async with Database(config.db_path, MIGRATIONS) as database:
            await database.write(lambda c: q.set_kv(c, "window_override_until", until))
        answer = {"window_open_until": until}
    print(f"downloads may run until {answer['window_open_until']}")
    return 0


async def _usb(config: TerminalConfig, directory: Path, as_json: bool) -> int:
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
    from terminal.enroll import stored_identity

    if not config.db_path.exists():
        return config
    async with Database(config.db_path, MIGRATIONS) as database:
        terminal_id, _token = await stored_identity(database)
    return config.replace(terminal_id=terminal_id, village_code="") if terminal_id else config


async def _enroll(config: TerminalConfig, code: str, tls_pin: str | None = None) -> int:
    from terminal.discovery import Discovery
    from terminal.enroll import enroll
    from terminal.errors import TerminalError

    url = config.server_url
    if not url and config.zeroconf:
        async with Discovery(interfaces=config.zeroconf_interfaces, terminal_id="",
                             village="") as discovery:
            await discovery.async_wait(max(config.discovery_timeout, 5.0))
            url = next((c.url for c in discovery.servers.values()), "")
    if not url:
        print("yuanjiao-terminal: no server found by mDNS; give --server-url", file=sys.stderr)
        return 1
    async with Database(config.db_path, MIGRATIONS) as database, aiohttp.ClientSession() as http:
        try:
            answer = await enroll(http, database, url, code, tls_pin)
        except TerminalError as e:
            print(f"yuanjiao-terminal: enrollment failed: {e}", file=sys.stderr)
            return 1
    print(f"enrolled: terminal {answer.terminal_id}, {answer.village_name} ({answer.village_code}); "
          f"server {answer.server_name}, key {answer.key_fingerprint}")
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
        print(f"yuanjiao-terminal: {e}", file=sys.stderr)
        return 2
    if args.command == "enroll":
        return asyncio.run(_enroll(config, args.code, args.tls_fingerprint))
    if not config.terminal_id:
        config = asyncio.run(_with_enrolled_id(config))
    if not config.terminal_id and args.command != "run":
        print("yuanjiao-terminal: this box is not enrolled: run `yuanjiao-terminal enroll CODE` "
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

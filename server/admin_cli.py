"""The data commands of `yuanjiao-server`, run against the same app setup as `serve`."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import secrets as pysecrets
import sys
from datetime import datetime, time, timedelta
from pathlib import Path

from aiohttp import web

from server.api.reports import import_roster
from server.app import create_app
from server.appkeys import CONFIG, DB, INGESTOR
from server.auth import secrets
from server.auth.policy import ADMIN_TOKEN_PREFIX
from server.config import ServerConfig
from server.county_import import load_county
from server.errors import Unprocessable
from server.ingest import ContentMeta, NotAVideo
from server.messages import chinese
from server.queries import auth as aq
from server.queries import contents as cq
from server.queries import county as county_q
from shared.protocol import ContentKind
from shared.timeutil import utcnow


async def run(args: argparse.Namespace, config: ServerConfig) -> int:
    app = create_app(config.replace(zeroconf=False))
    runner = web.AppRunner(app)
    await runner.setup()  # opens the database and media store; listens on nothing
    try:
        if args.command == "import-county":
            return await _import_county(app, args.folder)
        if args.command == "import-members":
            return await _import_members(app, args.file, dry_run=args.dry_run)
        if args.command == "add":
            meta = ContentMeta(title=args.title, kind=ContentKind(args.kind),
                               description=args.description, filename=args.file.name)
            return await _add(app, args.file, meta, assign=False)
        if args.command == "seed-demo":
            return await _seed(app, args.county, args.media)
        if args.command == "admin":
            return await _admin(app, args)
        if args.command == "bundle":
            return await _bundle(app, args)
        raise AssertionError(args.command)
    finally:
        await runner.cleanup()


async def _bundle(app: web.Application, args: argparse.Namespace) -> int:
    from server import bundles
    from server.appkeys import CONFIG, SERVER_ID, SIGNER, STORE
    from shared.bundle import FAT32_PART

    try:
        if args.bundle_command == "write":
            if not (args.township or args.terminal or args.offline):
                print("请选择 --township、--terminal 或 --offline / choose --township, --terminal or "
                      "--offline", file=sys.stderr)
                return 2
            report: object = await bundles.write_bundle(
                app[DB], app[STORE], app[SIGNER], app[CONFIG], app[SERVER_ID], args.directory,
                township=args.township, terminal_ids=tuple(args.terminal), offline=args.offline,
                part_limit=args.part_size or FAT32_PART)
        else:
            report = await bundles.import_returns(app[DB], args.directory, app[CONFIG].rollup_basis)
    except (bundles.BundleError, OSError) as e:
        print(f"yuanjiao-server bundle: U 盘数据包未完成 / not done: {e}", file=sys.stderr)
        return 1
    print(json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2))  # type: ignore[call-overload]
    if isinstance(report, bundles.BundleReport) and not report.complete:
        return 3  # written as far as it went: run again on the same (or a larger) stick
    return 0


async def _import_county(app: web.Application, folder: Path) -> int:
    units, villages, terminals = await app[DB].write(lambda c: load_county(c, folder))
    print(f"乡镇 {units} 个，村（社区）{villages} 个，新增终端站点 {terminals} 个 / {units} units, "
          f"{villages} villages/communities, {terminals} new terminal points")
    return 0


async def _import_members(app: web.Application, file: Path, *, dry_run: bool = False) -> int:
    """Import (or with dry_run only check) a roster file; 0 if every row was accepted."""
    try:
        report = await import_roster(app[DB], app[CONFIG].data_dir, file, dry_run=dry_run)
    except Unprocessable as e:
        print(f"{file.name}: 花名册无法导入：{chinese(e.code, 422, e.details)}\n"
              f"  the roster cannot be imported: {e.message}")
        return 1
    except OSError as e:
        print(f"{file.name}: 无法读取文件 / cannot read the file ({e.strerror})")
        return 1
    if dry_run:
        print(f"试导入（未保存）/ dry run, nothing stored: 将新增 {report.added} 人，更新 "
              f"{report.updated} 人，拒绝 {report.rejected} 行 / {report.added} would be added, "
              f"{report.updated} updated, {report.rejected} rows refused")
    else:
        print(f"新增 {report.added} 人，更新 {report.updated} 人，拒绝 {report.rejected} 行 / "
              f"{report.added} members added, {report.updated} updated, {report.rejected} rows rejected")
    if report.skipped_title_rows:
        print(f"跳过表头上方的标题行 {report.skipped_title_rows} 行 / skipped "
              f"{report.skipped_title_rows} title row(s) above the header")
    for label, problems in (("拒绝 refused", report.errors), ("提醒 warning", report.warnings)):
        for problem in problems[:CLI_ROWS]:
            print(f"  第 {problem.row} 行 line {problem.row} [{label}]: {problem.message}")
        if len(problems) > CLI_ROWS:
            print(f"  …… 另有 {len(problems) - CLI_ROWS} 行 / {len(problems) - CLI_ROWS} more")
    return 0 if not report.rejected else 1


CLI_ROWS = 200


async def _add(app: web.Application, file: Path, meta: ContentMeta, *, assign: bool) -> int:
    try:
        result = await app[INGESTOR].ingest_local(file, meta)
    except NotAVideo as e:
        print(f"{file}: 不接受：{chinese(e.code, 422, e.details)}\n  not accepted: {e}")
        return 1
    if assign:
        await app[DB].write(lambda c: cq.add_assignment(c, result.content_id, "county", "", None))
    state = "已添加 / added" if result.created else "已有，未重复保存 / already held"
    print(f"{meta.title}: {state}  {result.content_id} (sha256 {result.sha256[:16]}…)")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


async def _admin(app: web.Application, args: argparse.Namespace) -> int:
    db, now = app[DB], utcnow()
    try:
        if args.admin_command in ("create", "reset"):
            password = _read_password(args)
            secrets.check_password_rules(password)
            hashed = await secrets.hash_password(password)
            if args.admin_command == "create":
                county = args.county or None
                made = await db.write(
                    lambda c: aq.create_admin(c, args.username, hashed, args.role, now, county))
                if made is None:
                    raise ValueError(f"{args.username} exists already; use `admin reset`")
                where = f"，县 {county}" if county else "，全省"
                print(f"已创建账号 {args.username}（{args.role}{where}）/ account {args.username} "
                      f"({args.role}, {'county ' + county if county else 'province'}) created")
            else:
                if not await db.write(lambda c: aq.set_password(c, args.username, hashed, now)):
                    raise ValueError(f"no account {args.username}")
                print(f"{args.username} 的密码已更改，原有登录已退出 / password of {args.username} "
                      "changed; its sessions were ended")
            return 0
        row = await db.read(lambda c: aq.admin_by_name(c, args.username))
        if row is None:
            raise ValueError(f"no account {args.username}")
        token = secrets.new_token(ADMIN_TOKEN_PREFIX)
        token_hash = secrets.digest(token)
        await db.write(lambda c: aq.create_token(c, row.id, args.name, token_hash, now))
        print(token)
        return 0
    except ValueError as e:
        print(f"yuanjiao-server admin: 未完成 / not done: {e}", file=sys.stderr)
        return 1


async def ensure_demo_admin(app: web.Application) -> str | None:
    """The demo's first account: `admin` with a random password, printed once."""
    db = app[DB]
    if await db.read(aq.count_admins):
        return None
    password = pysecrets.token_urlsafe(12)
    hashed = await secrets.hash_password(password)
    now = utcnow()
    await db.write(lambda c: aq.create_admin(c, "admin", hashed, "admin", now))
    return password


async def _seed(app: web.Application, county_dir: Path, media_dir: Path) -> int:
    db = app[DB]
    password = await ensure_demo_admin(app)
    if password is not None:
        print(f"控制台账号 console account: admin  密码 password: {password}"
              "（请尽快修改 change it: yuanjiao-server admin reset admin）")
    await _import_county(app, county_dir)
    await _import_members(app, county_dir / "members.csv")
    manifest = media_dir / "samples.json"
    if not manifest.exists():
        print(f"缺少 {manifest}：请先运行 `python3 media/make_samples.py` / no {manifest}: run "
              "`python3 media/make_samples.py` first")
        return 1
    for sample in json.loads(manifest.read_text(encoding="utf-8")):
        meta = ContentMeta(title=sample["title"], kind=ContentKind(sample["kind"]),
                           description=sample.get("description", ""), filename=sample["file"])
        await _add(app, media_dir / sample["file"], meta, assign=True)
    if not await db.read(lambda c: cq.list_sessions(c, utcnow())):
        contents = await db.read(cq.list_contents)
        villages = await db.read(county_q.terminal_village_codes)
        tz = app[CONFIG].county_tz
        tomorrow = utcnow().astimezone(tz).date() + timedelta(days=1)
        starts = datetime.combine(tomorrow, time(19, 30), tz)
        ids = [c.id for c in reversed(contents)][:2]
        await db.write(lambda c: cq.add_session(c, "冬训第一课", starts, ids, villages))
        print(f"已安排 冬训第一课：{starts:%Y-%m-%d %H:%M}（北京时间），{len(villages)} 个村 / scheduled "
              f"for {len(villages)} villages")
    return 0

"""`yuanjiao-server`: run the county server and look after its data.

    yuanjiao-server serve [--data-dir DIR] [--host H] [--port P] [--config FILE]
    yuanjiao-server import-county FOLDER      units.csv + villages.csv (+ terminal points)
    yuanjiao-server import-members FILE [--dry-run]   the roster, CSV (UTF-8/GBK), XLSX or XLS
    yuanjiao-server add FILE --title T --kind K
    yuanjiao-server seed-demo                 sample county, roster, videos, a session
    yuanjiao-server admin create NAME [--role admin|viewer] [--county CODE] / reset NAME / token NAME --name N
    yuanjiao-server bundle write DIR (--township CODE | --terminal ID ... | --offline)
    yuanjiao-server bundle import DIR         attendance and state terminals put on a stick
    yuanjiao-server settings                  every setting with its default and help
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import zeroconf

from server import __version__
from server.config import ServerConfig, describe, load_config
from server.media.store import StoreRefused

log = logging.getLogger("server")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="yuanjiao-server",
                                description="远教县内容服务器 Yuanjiao county content server")
    p.add_argument("--version", action="version", version=__version__)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, nested: bool = False) -> None:
        # Nested subcommands accept the options too, without overwriting the parent's.
        default = argparse.SUPPRESS if nested else None
        sp.add_argument("--config", type=Path, help="TOML settings file", default=default)
        sp.add_argument("--data-dir", type=Path, help="database, media store and keys",
                        default=default)
        sp.add_argument("-v", "--verbose", action="store_true",
                        default=argparse.SUPPRESS if nested else False)

    serve = sub.add_parser("serve", help="启动服务器 run the server")
    common(serve)
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8750)")
    serve.add_argument("--zeroconf-interfaces",
                       help="comma-separated addresses for mDNS, or 'all'")
    serve.add_argument("--no-zeroconf", action="store_true", help="do not use mDNS")

    ic = sub.add_parser("import-county",
        help="导入乡镇和村（units.csv、villages.csv） "
             "load units.csv and villages.csv")
    common(ic)
    ic.add_argument("folder", type=Path)

    im = sub.add_parser("import-members", help="导入党员花名册（CSV、XLSX、XLS） load the member roster")
    common(im)
    im.add_argument("file", type=Path)
    im.add_argument("--dry-run", action="store_true",
                    help="check every row and print what would happen; store nothing")

    add = sub.add_parser("add", help="从本机添加视频 add a video file from this machine")
    common(add)
    add.add_argument("file", type=Path)
    add.add_argument("--title", required=True)
    add.add_argument("--kind", default="feature_film",
                     choices=["feature_film", "lecture", "farming_technique"])
    add.add_argument("--description", default="")

    demo = sub.add_parser("seed-demo",
                          help="载入示例县、花名册和视频 load the sample county, roster and videos")
    common(demo)
    demo.add_argument("--county", type=Path, default=Path("demo/county"))
    demo.add_argument("--media", type=Path, default=Path("media"))

    adm = sub.add_parser("admin", help="控制台账号和接口令牌 console accounts and API tokens")
    common(adm)
    adm_sub = adm.add_subparsers(dest="admin_command", required=True)
    for name, text in (("create", "新建账号 make an account"), ("reset", "重设密码 set a new password")):
        sp = adm_sub.add_parser(name, help=text)
        common(sp, nested=True)
        sp.add_argument("username")
        sp.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input instead of asking")
        if name == "create":
            sp.add_argument("--role", choices=["admin", "viewer"], default="admin")
            sp.add_argument("--county", metavar="CODE", default="",
                            help="县级账号：只管这个县（六位县代码）; a county's account: sees that "
                                 "county alone (its six-digit code). Left out: the province's")
    tok = adm_sub.add_parser("token",
                             help="生成接口令牌（只显示一次） make an API token for scripts (shown once)")
    common(tok, nested=True)
    tok.add_argument("username")
    tok.add_argument("--name", required=True, help="what the token is for")

    bun = sub.add_parser("bundle", help="U 盘数据包（无网络的村） USB bundles for villages without a link")
    common(bun)
    bun_sub = bun.add_subparsers(dest="bundle_command", required=True)
    bw = bun_sub.add_parser("write", help="把目录和缺少的内容写到 U 盘 "
                                          "write catalogs and missing items onto a stick")
    common(bw, nested=True)
    bw.add_argument("directory", type=Path, help="the stick's mount point")
    bw.add_argument("--township", help="every terminal of this township (unit code)")
    bw.add_argument("--terminal", action="append", default=[], help="a terminal id (repeatable)")
    bw.add_argument("--offline", action="store_true", help="every terminal not online now")
    bw.add_argument("--part-size", type=int, default=None,
                    help="largest file on the stick in bytes (default 2 GiB, for FAT32)")
    bi = bun_sub.add_parser("import", help="导入终端写回 U 盘的记录 "
                                           "take in the returns terminals wrote on a stick")
    common(bi, nested=True)
    bi.add_argument("directory", type=Path, help="the stick's mount point")

    sub.add_parser("settings", help="列出全部设置 list every setting")
    return p


def _config(args: argparse.Namespace) -> ServerConfig:
    overrides: dict[str, Any] = {"data_dir": args.data_dir}
    for name in ("host", "port", "zeroconf_interfaces"):
        overrides[name] = getattr(args, name, None)
    if getattr(args, "no_zeroconf", False):
        overrides["zeroconf"] = False
    return load_config(args.config, overrides=overrides)


async def _serve(config: ServerConfig) -> None:
    from server.runner import RunningServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with RunningServer(config) as server:
        print(f"远教县内容服务器已启动：{server.url}（数据目录 {config.data_dir}）"
              f" / Yuanjiao county server on {server.url} (data in {config.data_dir})", flush=True)
        print(f"  管理控制台 console: {server.url}/   接口文档 API document: "
              f"{server.url}/api/v1/openapi.json", flush=True)
        await stop.wait()
        print("正在停止 / stopping", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "settings":
        print(describe())
        return 0
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = _config(args)
    except (ValueError, OSError) as e:
        print(f"yuanjiao-server: 设置有误 / bad settings: {e}", file=sys.stderr)
        return 2
    if args.command == "serve":
        try:
            asyncio.run(_serve(config))
        except (OSError, zeroconf.Error, StoreRefused) as e:
            # a busy port, a network that refuses mDNS, a bucket that refuses the settings:
            # one line, not a traceback
            print(f"yuanjiao-server: 无法启动 / cannot start: {e}", file=sys.stderr)
            return 1
        return 0
    from server import admin_cli

    return asyncio.run(admin_cli.run(args, config))


if __name__ == "__main__":
    sys.exit(main())

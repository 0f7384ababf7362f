"""Blobs through nginx + X-Accel-Redirect against nginx serving the same files directly.

    python3 bench/bench_accel.py [--quick] [--files N] [--size-mib S] [--seconds D] [--reps R]
                                 [--concurrency 1,32,211]

The county deployment (deploy/nginx-yuanjiao-county.conf): nginx in front of two server
processes on one data directory, started with `accel_redirect_prefix = "/_media/"`.
Each `/blobs/<sha256>` request goes to a server process, which checks the terminal's
token and answers with an empty body and `X-Accel-Redirect`; nginx then sends the file
itself (sendfile) from its internal location. Two references, through the same nginx:

    direct    nginx serves the same files itself (`/direct/<sha256>`, no token, no
              server): the cost of the authorisation round trip per request
    proxied   two more server processes without the setting, nginx passing their
              answers on (`/proxied/<sha256>`): what the deployment does without X-Accel

wrk is the load generator (the script and parsing of bench/bench_blobs.py), each
connection walking the file set. Prints MB/s and requests/s per path and concurrency
(median of R runs, and the best) and the ratios. Target: at least 0.8x the direct figure
with 211 clients on 1 MiB files (the size where a per-request cost shows; films are far
larger).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from _common import (
    HOST,
    REPO,
    MiB,
    ServerProcess,
    admin_token,
    enroll_terminals,
    free_port,
    machine,
    median,
    run_cli,
    stop_process,
    table,
    temp_dir,
    wait_http,
)
from bench_blobs import NGINX_HEAD, WRK_SCRIPT, Run, check_same_bytes, warm, write_blob, wrk

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TARGET_RATIO = 0.8
PROCESSES = 2
PATHS = {"accel": "/blobs/", "direct": "/direct/", "proxied": "/proxied/"}

NGINX_CONF = NGINX_HEAD + """    upstream yuanjiao {{
{upstreams}
        keepalive 64;
    }}
    upstream plain {{
{plain}
        keepalive 64;
    }}
    server {{
        listen {host}:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location /blobs/ {{ proxy_pass http://yuanjiao; }}
        location /_media/ {{
            internal;
            alias {media}/;
            etag off;
            add_header ETag $upstream_http_etag;
        }}
        location ~ "^/direct/([0-9a-f]{{2}})([0-9a-f]{{62}})$" {{
            alias {media}/$1/$1$2;
        }}
        location ~ "^/proxied/([0-9a-f]{{64}})$" {{
            proxy_buffering off;
            proxy_pass http://plain/blobs/$1;
        }}
    }}
}}
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer files, short runs (about 30 s)")
    p.add_argument("--files", type=int, help="number of files in the set (default 211, quick 64)")
    p.add_argument("--size-mib", type=float, default=1.0, help="size of each file (default 1)")
    p.add_argument("--seconds", type=float, help="length of each wrk run (default 6, quick 2)")
    p.add_argument("--reps", type=int, help="runs per path and concurrency (default 3, quick 1)")
    p.add_argument("--concurrency", default="1,32,211", help="comma-separated connection counts")
    args = p.parse_args()
    files = args.files or (64 if args.quick else 211)
    size = int(args.size_mib * MiB)
    seconds = args.seconds or (2 if args.quick else 6)
    reps = args.reps or (1 if args.quick else 3)
    levels = [int(c) for c in args.concurrency.split(",")]
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y --no-install-recommends wrk)", file=sys.stderr)
        return 2

    print(f"machine: {machine()}")
    print(f"files: {files} x {size / MiB:g} MiB; {PROCESSES} server processes behind nginx per path; "
          f"wrk runs of {seconds:g} s, {reps} per path and concurrency")
    with temp_dir("yuanjiao-bench-accel-") as tmp:
        data = tmp / "data"
        media = data / "media"
        media.mkdir(parents=True)
        shas = [write_blob(media, os.urandom(size)) for _ in range(files)]
        for sha in shas:
            warm(media / sha[:2] / sha)
        lists = {name: tmp / f"{name}.txt" for name in PATHS}
        for name, prefix in PATHS.items():
            lists[name].write_text("".join(f"{prefix}{s}\n" for s in shas))
        script = tmp / "paths.lua"
        script.write_text(WRK_SCRIPT)
        run_cli("import-county", str(REPO / "demo" / "county"), data_dir=data)
        admin = admin_token(data)
        with ExitStack() as stack:
            os.environ["YUANJIAO_ACCEL_REDIRECT_PREFIX"] = "/_media/"  # for these processes
            servers = [stack.enter_context(ServerProcess(data, tmp / f"server{i}.log"))
                       for i in range(PROCESSES)]
            del os.environ["YUANJIAO_ACCEL_REDIRECT_PREFIX"]
            plain = [stack.enter_context(ServerProcess(data, tmp / f"plain{i}.log"))
                     for i in range(PROCESSES)]
            token = asyncio.run(enroll_terminals(servers[0].url, admin, ["T140121100001"])).get(
                "T140121100001")
            port = free_port()
            conf = tmp / "nginx.conf"
            conf.write_text(NGINX_CONF.format(
                tmp=tmp, host=HOST, port=port, media=media,
                upstreams="\n".join(f"        server {HOST}:{s.port};" for s in servers),
                plain="\n".join(f"        server {HOST}:{s.port};" for s in plain)))
            url = f"http://{HOST}:{port}"
            nginx = subprocess.Popen([NGINX, "-p", str(tmp), "-e", str(tmp / "nginx-error.log"),
                                      "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
            try:
                wait_http(f"{url}/direct/{shas[0]}", 20, nginx)
                check_same_bytes([url], shas[0], token)  # through X-Accel, with the token
                results = measure(url, levels, reps, seconds, lists, script, token)
            finally:
                stop_process(nginx)
        report(results, levels)
    return 0


Results = dict[tuple[int, str], list[Run]]


def measure(url: str, levels: list[int], reps: int, seconds: float, lists: dict[str, Path],
            script: Path, token: str | None) -> Results:
    results: Results = {}
    for conns in levels:
        for rep in range(reps):
            order = list(PATHS)
            if rep % 2:
                order.reverse()  # no path always runs first
            for name in order:
                run = wrk(url, lists[name], script, conns, seconds, None if name == "direct" else token)
                results.setdefault((conns, name), []).append(run)
                print(f"  {conns:>4} conns  {name:7}  {run.mb_s:9,.0f} MB/s  {run.req_s:9,.1f} req/s"
                      f"  errors {run.errors}", flush=True)
    return results


def report(results: Results, levels: list[int]) -> None:
    rows = []
    for conns in levels:
        a, d, p = results[(conns, "accel")], results[(conns, "direct")], results[(conns, "proxied")]
        a_mb, d_mb, p_mb = (median([r.mb_s for r in x]) for x in (a, d, p))
        rows.append([conns, a_mb, max(r.mb_s for r in a), median([r.req_s for r in a]),
                     d_mb, max(r.mb_s for r in d), p_mb, max(r.mb_s for r in p),
                     f"{a_mb / d_mb:.2f}x", f"{a_mb / p_mb:.2f}x", sum(r.errors for r in a + d + p)])
    print()
    print(table(["clients", "accel MB/s", "best", "req/s", "direct MB/s", "best", "proxied MB/s",
                 "best", "accel/direct", "accel/proxied", "errors"], rows))
    top = max(levels)
    a = median([r.mb_s for r in results[(top, "accel")]])
    d = median([r.mb_s for r in results[(top, "direct")]])
    print(f"target: >= {TARGET_RATIO}x nginx direct with {top} clients: {a / d:.2f}x "
          f"{'met' if a / d >= TARGET_RATIO else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())

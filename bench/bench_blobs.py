"""Blob serving: `/blobs/<sha256>` from the county server against nginx, same files.

    python3 bench/bench_blobs.py [--quick] [--files N] [--size-mib S] [--large-mib L]
                                 [--seconds D] [--reps R]

The files are written straight into a media store (`media/<sha[:2]>/<sha>`, named by the
sha256 of their bytes), so the server serves them as it serves uploaded content. nginx,
started here with a generated configuration (one process, `sendfile on`), serves the same
files from the same directory under the same URLs. wrk is the load generator for both,
at 1, 32 and 211 concurrent connections (211 is one per terminal point in the county);
each connection walks through the whole set of files. A last phase downloads one large
file with 32 connections, to show that the server's memory does not grow with file size.

Prints aggregate MB/s and requests/s per server and concurrency (median of R runs, and
the best), the ratio server/nginx, and the server's peak resident memory.
Targets: at least 0.9x nginx with 211 clients; server RSS under 100 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from _common import (
    HOST,
    REPO,
    MiB,
    RssSampler,
    ServerProcess,
    admin_token,
    enroll_terminals,
    free_port,
    machine,
    median,
    memory_kib,
    reset_peak,
    run_cli,
    stop_process,
    table,
    temp_dir,
    wait_http,
)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TARGET_RATIO = 0.9
TARGET_RSS_MB = 100

WRK_SCRIPT = r"""
local paths = {}
local n = 0
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  n = math.random(#paths)
end
request = function()
  n = n % #paths + 1
  return wrk.format("GET", paths[n])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nRESULT {"requests": %d, "bytes": %d, "duration_us": %d, "errors": %d, ' ..
    '"status_errors": %d, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""

# nginx as the benchmarks run it: one worker in the foreground, everything under {tmp},
# tuned for throughput. bench_accel.py puts its own servers after this head.
NGINX_HEAD = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
"""

NGINX_CONF = NGINX_HEAD + """    server {{
        listen {host}:{port};
        location ~ "^/blobs/([0-9a-f]{{2}})([0-9a-f]{{62}})$" {{
            alias {media}/$1/$1$2;
        }}
    }}
}}
"""


@dataclass(frozen=True)
class Run:
    requests: int
    bytes: int
    seconds: float
    errors: int

    @property
    def mb_s(self) -> float:
        return self.bytes / self.seconds / 1e6

    @property
    def req_s(self) -> float:
        return self.requests / self.seconds


def write_blob(media: Path, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    path = media / sha[:2] / sha
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return sha


def write_large_blob(media: Path, size: int) -> str:
    """A large file written in blocks (never whole in memory), then named by its hash."""
    tmp = media / "large.tmp"
    h = hashlib.sha256()
    block = os.urandom(8 * MiB)
    with open(tmp, "wb") as f:
        written = 0
        while written < size:
            piece = block[: min(len(block), size - written)]
            piece = written.to_bytes(8, "big") + piece[8:]
            f.write(piece)
            h.update(piece)
            written += len(piece)
    sha = h.hexdigest()
    dest = media / sha[:2] / sha
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(dest)
    return sha


def warm(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(8 * MiB):
            pass


def wrk(url: str, paths_file: Path, script: Path, connections: int, seconds: float,
        token: str | None) -> Run:
    threads = 1 if connections == 1 else 2
    auth = ["-H", f"Authorization: Bearer {token}"] if token else []
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
         "--timeout", "60s", *auth, "-s", str(script), url, "--", str(paths_file)],
        capture_output=True, text=True, timeout=seconds + 120, check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    r = json.loads(line.removeprefix("RESULT "))
    return Run(r["requests"], r["bytes"], r["duration_us"] / 1e6, r["errors"] + r["status_errors"])


def check_same_bytes(urls: list[str], sha: str, token: str | None) -> None:
    """Both servers answer a blob with exactly its bytes (a wrong 404 would look fast)."""
    import urllib.request

    for base in urls:
        req = urllib.request.Request(f"{base}/blobs/{sha}")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=30) as r:
            got = hashlib.sha256(r.read()).hexdigest()
        if got != sha:
            raise SystemExit(f"{base} served the wrong bytes for {sha}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small files, short runs (about 40 s)")
    p.add_argument("--files", type=int, default=211, help="number of files in the set")
    p.add_argument("--size-mib", type=float, help="size of each file (default 4, quick 1)")
    p.add_argument("--large-mib", type=int, help="size of the large file (default 1024, quick 256)")
    p.add_argument("--seconds", type=float, help="length of each wrk run (default 6, quick 2)")
    p.add_argument("--reps", type=int, help="runs per server and concurrency (default 3, quick 1)")
    p.add_argument("--concurrency", default="1,32,211", help="comma-separated connection counts")
    args = p.parse_args()
    size = int((args.size_mib or (1 if args.quick else 4)) * MiB)
    large = (args.large_mib or (256 if args.quick else 1024)) * MiB
    seconds = args.seconds or (2 if args.quick else 6)
    reps = args.reps or (1 if args.quick else 3)
    levels = [int(c) for c in args.concurrency.split(",")]
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y --no-install-recommends wrk)", file=sys.stderr)
        return 2

    print(f"machine: {machine()}")
    print(f"files: {args.files} x {size / MiB:g} MiB, plus one of {large / MiB:g} MiB; "
          f"wrk runs of {seconds:g} s, {reps} per server and concurrency")
    with temp_dir("yuanjiao-bench-blobs-") as tmp:
        data = tmp / "data"
        media = data / "media"
        media.mkdir(parents=True)
        shas = [write_blob(media, os.urandom(size)) for _ in range(args.files)]
        large_sha = write_large_blob(media, large)
        for sha in [*shas, large_sha]:
            warm(media / sha[:2] / sha)
        small_list, large_list, script = tmp / "small.txt", tmp / "large.txt", tmp / "paths.lua"
        small_list.write_text("".join(f"/blobs/{s}\n" for s in shas))
        large_list.write_text(f"/blobs/{large_sha}\n")
        script.write_text(WRK_SCRIPT)

        nginx_port = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, host=HOST, port=nginx_port, media=media))
        nginx_url = f"http://{HOST}:{nginx_port}"
        run_cli("import-county", str(REPO / "demo" / "county"), data_dir=data)
        admin = admin_token(data)
        with ServerProcess(data, tmp / "server.log") as server:
            # Blobs are served to enrolled terminals: wrk sends one terminal's token.
            token = asyncio.run(enroll_terminals(server.url, admin, ["T140121100001"])).get(
                "T140121100001")
            nginx = subprocess.Popen([NGINX, "-p", str(tmp), "-e", str(tmp / "nginx-error.log"),
                                      "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
            try:
                wait_http(f"{nginx_url}/", 20, nginx)
                check_same_bytes([server.url, nginx_url], shas[0], token)
                startup_peak = reset_peak(server.pid)
                idle_rss = memory_kib(server.pid)["VmRSS"]
                results = measure(server, nginx, nginx_url, levels, reps, seconds,
                                  small_list, large_list, script, token)
                nginx_peak = memory_kib(nginx.pid)["VmHWM"]
            finally:
                stop_process(nginx)
            server_hwm = memory_kib(server.pid)["VmHWM"]
        report(results, levels, idle_rss, server_hwm, nginx_peak, startup_peak)
    return 0


Results = dict[tuple[str, str], tuple[list[Run], int]]


def measure(server: ServerProcess, nginx: subprocess.Popen[bytes], nginx_url: str, levels: list[int],
            reps: int, seconds: float, small_list: Path, large_list: Path, script: Path,
            token: str | None) -> Results:
    results: Results = {}
    phases = [(str(c), c, small_list) for c in levels] + [("large", 32, large_list)]
    for label, conns, paths in phases:
        for rep in range(reps):
            order = [("server", server.url), ("nginx", nginx_url)]
            if rep % 2:
                order.reverse()  # neither side always runs first
            for name, url in order:
                pid = server.pid if name == "server" else nginx.pid
                with RssSampler(pid) as rss:
                    run = wrk(url, paths, script, conns, seconds, token)
                runs, peak = results.get((label, name), ([], 0))
                results[(label, name)] = ([*runs, run], max(peak, rss.peak))
                print(f"  {label:>5} conns  {name:6}  {run.mb_s:9,.0f} MB/s  {run.req_s:9,.1f} req/s"
                      f"  errors {run.errors}  rss {rss.peak * 1024 / 1e6:.0f} MB", flush=True)
    return results


def report(results: Results, levels: list[int], idle_rss: int, server_hwm: int, nginx_hwm: int,
           startup_peak: int) -> None:
    rows = []
    for label in [*map(str, levels), "large"]:
        s_runs, s_peak = results[(label, "server")]
        n_runs, _ = results[(label, "nginx")]
        s_mb, n_mb = median([r.mb_s for r in s_runs]), median([r.mb_s for r in n_runs])
        rows.append([
            "32 (large file)" if label == "large" else label,
            s_mb, max(r.mb_s for r in s_runs), median([r.req_s for r in s_runs]),
            n_mb, max(r.mb_s for r in n_runs), median([r.req_s for r in n_runs]),
            f"{s_mb / n_mb:.2f}x", f"{s_peak * 1024 / 1e6:.0f}",
            sum(r.errors for r in s_runs + n_runs),
        ])
    print()
    print(table(["clients", "server MB/s", "best", "req/s", "nginx MB/s", "best", "req/s",
                 "server/nginx", "server RSS MB", "errors"], rows))
    s_211, _ = results.get(("211", "server"), ([], 0))
    n_211, _ = results.get(("211", "nginx"), ([], 0))
    print()
    print(f"server RSS: {idle_rss * 1024 / 1e6:.0f} MB idle, peak while serving "
          f"{server_hwm * 1024 / 1e6:.0f} MB (VmHWM; {startup_peak * 1024 / 1e6:.0f} MB during "
          f"start-up); nginx peak {nginx_hwm * 1024 / 1e6:.0f} MB")
    if s_211 and n_211:
        ratio = median([r.mb_s for r in s_211]) / median([r.mb_s for r in n_211])
        ok = ratio >= TARGET_RATIO
        print(f"target: >= {TARGET_RATIO}x nginx with 211 clients: {ratio:.2f}x "
              f"{'met' if ok else 'MISSED'}")
    ok_rss = server_hwm * 1024 / 1e6 < TARGET_RSS_MB
    print(f"target: server RSS < {TARGET_RSS_MB} MB: {server_hwm * 1024 / 1e6:.0f} MB "
          f"{'met' if ok_rss else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())

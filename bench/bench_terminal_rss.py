"""The terminal daemon's footprint: resident memory idle and while downloading 1 GiB.

    python3 bench/bench_terminal_rss.py [--quick] [--size-mib N] [--limit-mib 80]

A county server runs as its own process on 127.0.0.1 (no mDNS) with the sample county.
A file of N MiB (default 1024: sparse, with random blocks spread through it so it is not
all zeros) is written straight into the server's media store and recorded as content.
The terminal is enrolled as a site manager enrolls it: the admin makes a one-time code,
`python -m terminal enroll CODE --server-url ...` trades it for the token and pins the
server's key (a terminal never enrolled trusts no server and syncs nothing). The daemon
then runs as its own process (`python -m terminal run`, loopback only, no mDNS). Its RSS
is sampled:

* idle: synced with an empty catalog, heartbeats and outbox running;
* downloading: the file assigned to its village, from the first byte until it is
  verified and renamed into place (peak, by sampling VmRSS, and VmHWM at the end).

Prints the figures, the download time and rate; exits 1 if a figure is over the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from _common import (
    REPO,
    MiB,
    RssSampler,
    ServerProcess,
    admin_token,
    enrollment_code,
    memory_kib,
    run_cli,
    stop_process,
    temp_dir,
)

TERMINAL_ID = "T140121100001"
VILLAGE = TERMINAL_ID[1:]


def make_file(path: Path, size: int) -> str:
    """A sparse file with a random 64 KiB block every 8 MiB; returns its sha256."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset in range(0, size, 8 * MiB):
            f.seek(offset)
            f.write(os.urandom(min(64 * 1024, size - offset)))
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(4 * MiB):
            h.update(block)
    return h.hexdigest()


def ingest(data_dir: Path, src: Path, sha: str, size: int) -> str:
    """Put the file in the store and record it as content, as an upload would."""
    import sqlalchemy

    from server.db import sqlite_url
    from server.queries.contents import NewContent, add_content

    dest = data_dir / "media" / sha[:2] / sha
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
    engine = sqlalchemy.create_engine(sqlite_url(data_dir / "yuanjiao.sqlite3"))
    try:
        with engine.begin() as conn:
            content_id, _ = add_content(conn, NewContent(
                sha256=sha, size=size, title="基准测试：大文件", kind="feature_film",
                description="", original_filename="bench.mp4", duration_seconds=3600.0,
                container="mov,mp4", video_codec="h264", audio_codec="aac", width=1280,
                height=720, poster_sha256=None, poster_size=None,
            ))
    finally:
        engine.dispose()
    return content_id


async def assign(url: str, admin: str | None, content_id: str) -> None:
    import aiohttp

    headers = {"Authorization": f"Bearer {admin}"} if admin else {}
    async with aiohttp.ClientSession(url, headers=headers) as http, http.post(
        "/api/v1/admin/assignments",
        json={"content_id": content_id, "scope": "village", "target": VILLAGE},
    ) as r:
        if r.status != 201:
            raise RuntimeError(f"assignment failed: HTTP {r.status} {await r.text()}")


def wait_log(log: Path, pattern: str, timeout: float, proc: subprocess.Popen[bytes]) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the terminal exited: {log.read_text()[-2000:]}")
        if m := re.search(pattern, log.read_text(errors="replace")):
            return m
        time.sleep(0.1)
    raise RuntimeError(f"no {pattern!r} in the terminal's log within {timeout:.0f} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a 256 MiB file, 2 s idle (about 20 s)")
    p.add_argument("--size-mib", type=int, help="the file downloaded (default 1024, quick 256)")
    p.add_argument("--limit-mib", type=float, default=80.0)
    p.add_argument("--idle-seconds", type=float, help="idle sampling (default 5, quick 2)")
    args = p.parse_args()
    args.size_mib = args.size_mib or (256 if args.quick else 1024)
    args.idle_seconds = args.idle_seconds or (2.0 if args.quick else 5.0)
    size = args.size_mib * MiB

    with temp_dir("yj-bench-terminal-") as tmp:
        server_dir, terminal_dir = tmp / "server", tmp / "terminal"
        run_cli("import-county", str(REPO / "demo" / "county"), data_dir=server_dir)
        t0 = time.monotonic()
        sha = make_file(tmp / "big.bin", size)
        content_id = ingest(server_dir, tmp / "big.bin", sha, size)
        print(f"made and ingested {args.size_mib} MiB in {time.monotonic() - t0:.1f} s")
        admin = admin_token(server_dir)
        with ServerProcess(server_dir, tmp / "server.log") as server:
            if admin is None:
                raise SystemExit("this server has no admin accounts, so no enrollment codes")
            code = asyncio.run(enrollment_code(server.url, admin, TERMINAL_ID))
            env = {**os.environ, "PYTHONUNBUFFERED": "1",
                   "YUANJIAO_TERMINAL_SYNC_INTERVAL": "1", "YUANJIAO_TERMINAL_HEARTBEAT_INTERVAL": "5"}
            enrolled = subprocess.run(
                [sys.executable, "-m", "terminal", "enroll", code, "--server-url", server.url,
                 "--data-dir", str(terminal_dir)],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
            )
            if enrolled.returncode != 0:
                raise SystemExit(f"enrolling the terminal failed: {enrolled.stderr[-1000:]}")
            log = tmp / "terminal.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "terminal", "run", "--data-dir", str(terminal_dir),
                     "--terminal-id", TERMINAL_ID, "--server-url", server.url, "--no-zeroconf",
                     "--status-host", "127.0.0.1", "--status-port", "0", "--no-progress",
                     "--progress-log-seconds", "5"],
                    cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                )
            try:
                wait_log(log, r"catalog version \d+ in force", 60, proc)
                with RssSampler(proc.pid) as idle:
                    time.sleep(args.idle_seconds)
                idle_now = memory_kib(proc.pid)["VmRSS"]

                asyncio.run(assign(server.url, admin, content_id))
                t0 = time.monotonic()
                with RssSampler(proc.pid) as busy:
                    wait_log(log, rf"ready: {sha[:12]}", 600, proc)
                took = time.monotonic() - t0
                hwm = memory_kib(proc.pid)["VmHWM"]
            finally:
                stop_process(proc)
            cached = terminal_dir / "cache" / sha
            ok_file = cached.stat().st_size == size

    mib = 1024.0
    print(f"terminal RSS idle:        {idle_now / mib:6.1f} MiB (peak while idle {idle.peak / mib:.1f} MiB)")
    print(f"terminal RSS downloading: {busy.peak / mib:6.1f} MiB peak "
          f"(VmHWM over the run {hwm / mib:.1f} MiB)")
    print(f"download of {args.size_mib} MiB: {took:.1f} s, {args.size_mib / took:.0f} MiB/s, "
          f"verified and in place: {ok_file}")
    over = max(idle.peak, busy.peak, hwm) / mib > args.limit_mib
    print(f"target < {args.limit_mib:.0f} MiB: {'FAIL' if over else 'ok'}")
    return 1 if over or not ok_file else 0


if __name__ == "__main__":
    raise SystemExit(main())

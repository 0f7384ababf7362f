"""A fleet simulator: many terminals speaking the real protocol to the server.

    python3 bench/bench_fleet.py [--quick] [--fleets 211,2110,20000] [--seconds S]
                                 [--interval S] [--storm-records N] [--connections C]
                                 [--engine sqlite|postgresql|both] [--soak MINUTES]
                                 [--processes P]

The server is one process, or with `--processes P` P processes on the same data
directory and database behind nginx (as deploy/nginx-yuanjiao-county.conf, without TLS;
the province deployment); the terminals then speak to nginx, and the server CPU column
is the processes' and nginx's together.

For each engine and fleet size the server starts fresh (its own process, media on local
disk; SQLite, the embedded default, or PostgreSQL: a throwaway cluster from Debian's
packages with fsync on, a fresh schema per run) with the sample county, one short video
assigned to the whole county, and that many terminal points, each enrolled through the
API (an admin's one-time code, traded by `POST /api/v1/enroll`). Then, all measured from
this process:

Enrolling, each terminal fetches its first catalog at once, as a real terminal does: the
terminals of the phases below hold a catalog and poll with its ETag. Then, all measured
from this process:

1. reference: every terminal asks `GET /api/v1/server` once per interval — the cost of
   the HTTP stack and this client at the same request rate, with no database behind it;
2. steady load: every terminal, at its own phase in the interval (60 s, as deployed),
   sends a heartbeat and polls its catalog with `If-None-Match`; one tick in ten also
   delivers an attendance batch of 2 records, one in twenty reads a 256 KiB range of the
   video from `/blobs/<sha256>`;
3. restart: the server is stopped and started again on the same data, and the steady
   load runs for one interval: every terminal's first contact with a process that has
   nothing remembered yet (token look-ups, catalogs worked out afresh);
4. reconnect storm: every terminal at once, as after a week offline: one batch of N
   records (default 50), sent again with backoff until acknowledged (as the outbox
   does), then a heartbeat and a catalog poll; a tenth of the batches is sent once more
   after its acknowledgement (a lost answer), which must store nothing twice. The phase
   lasts until every record is acknowledged: its length is the drain time
   (`--storm-records 0` leaves it out).

`--soak M` runs the steady load alone for M minutes instead (a 30-minute soak at 2,110
terminals is the target) and prints the server's RSS and CPU minute by minute: the RSS
of the last minute against the first says whether memory stays flat.

Requests share a pool of C keep-alive connections (default 256), as terminals do behind
the county's reverse proxy. Prints p50/p95/p99 per endpoint and phase, errors, records
sent / acknowledged / stored (read from the database afterwards), the server's RSS and
CPU, and this load generator's own CPU (a client near 100 % of a core is the limit, not
the server). On PostgreSQL the database's own processes are on the same two cores: their
CPU is shown in its own column. Target on the project's 2-core machine: the steady load at 20,000
terminals with p99 under 100 ms, no errors, every record stored exactly once; the
restart interval is reported beside it, with no target of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import msgspec
import sqlalchemy
from _common import (
    HOST,
    REPO,
    ServerProcess,
    admin_token,
    free_port,
    machine,
    memory_kib,
    run_cli,
    stop_process,
    table,
    temp_dir,
    wait_http,
)
from bench_blobs import NGINX_HEAD

sys.path.insert(0, str(REPO))
from server.config import load_config
from server.db import normalise_url
from tests import pg_cluster

TARGET_P99_MS = 100.0
RANGE = 256 * 1024
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# As deploy/nginx-yuanjiao-county.conf, without TLS: nginx in front of the processes.
NGINX_CONF = NGINX_HEAD + """    upstream yuanjiao {{
{upstreams}
        keepalive 256;
    }}
    server {{
        listen {host}:{port};
        client_max_body_size 0;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        location / {{ proxy_pass http://yuanjiao; }}
    }}
}}
"""


class Servers:
    """`processes` server processes on one data directory (and one database); with more
    than one, nginx in front of them, and `url` is nginx's. `pids` are the server
    processes' and nginx's (their CPU is the server's), `server_pids` the processes'."""

    def __init__(self, data: Path, tmp: Path, processes: int) -> None:
        self.data, self.tmp, self.processes = data, tmp, processes
        self.url = ""
        self.pids: list[int] = []
        self.server_pids: list[int] = []
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Servers:
        with contextlib.ExitStack() as stack:
            logs = ["server.log"] if self.processes == 1 else [
                f"server{i}.log" for i in range(1, self.processes + 1)]
            procs = [stack.enter_context(ServerProcess(self.data, self.tmp / log)) for log in logs]
            self.server_pids = self.pids = [p.pid for p in procs]
            self.url = procs[0].url
            if self.processes > 1:
                port = free_port()
                conf = self.tmp / "nginx.conf"
                conf.write_text(NGINX_CONF.format(
                    tmp=self.tmp, host=HOST, port=port,
                    upstreams="\n".join(f"        server {HOST}:{p.port};" for p in procs)))
                nginx = subprocess.Popen([NGINX, "-p", str(self.tmp), "-e",
                                          str(self.tmp / "nginx-error.log"), "-c", str(conf)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
                stack.callback(stop_process, nginx)
                self.url = f"http://{HOST}:{port}"
                wait_http(f"{self.url}/api/v1/server", 20, nginx)
                self.pids = [*self.server_pids, nginx.pid]
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def rss_mib(self) -> float:
        return sum(memory_kib(pid)["VmRSS"] for pid in self.server_pids) / 1024


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)
    records_sent: int = 0
    records_acked: int = 0
    retries: int = 0

    def timed(self, name: str, seconds: float, ok: bool, detail: str = "") -> None:
        self.latencies[name].append(seconds)
        if not ok:
            self.errors[name] += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(f"{name}: {detail[:200]}")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] * 1000


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / 100  # utime + stime, in clock ticks of 1/100 s


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process on the machine (the bench's cluster is the
    only one running), 0 on SQLite."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() not in ("postgres", "postmaster"):
                    continue
            total += cpu_seconds(int(entry))
        except OSError:
            continue  # gone meanwhile
    return total


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def villages() -> list[str]:
    with open(REPO / "demo" / "county" / "villages.csv", encoding="utf-8") as f:
        return [row["code"] for row in csv.DictReader(f)]


def make_clip(path: Path) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
                    "-t", "4", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-shortest", str(path)], check=True)


class Fleet:
    """The terminals of one run: ids, tokens, and the client that speaks for them."""

    def __init__(self, url: str, http: aiohttp.ClientSession, admin: str) -> None:
        self.url, self.http, self.admin = url, http, admin
        self.tokens: dict[str, str] = {}
        self.etags: dict[str, str] = {}
        self.seq: dict[str, int] = defaultdict(int)
        self.blob = ""

    async def setup(self, size: int) -> None:
        """Assign the video to every terminal; register and enroll `size` terminals."""
        admin = {"Authorization": f"Bearer {self.admin}"}
        async with self.http.get("/api/v1/admin/contents", headers=admin) as r:
            content = (await r.json())[0]
        async with self.http.post("/api/v1/admin/assignments", headers=admin,
                                  json={"content_id": content["id"], "scope": "county"}) as r:
            if r.status != 201:
                raise SystemExit(f"assigning: HTTP {r.status} {await r.text()}")
        async with self.http.get("/api/v1/admin/fleet", headers=admin) as r:
            known = [t["id"] for t in (await r.json())["terminals"]]
        ids = known[:size]
        codes = villages()
        sem = asyncio.Semaphore(64)

        async def add(n: int) -> str:
            tid = f"S{n:05d}"
            async with sem, self.http.post("/api/v1/admin/terminals", headers=admin, json={
                    "id": tid, "village_code": codes[n % len(codes)], "name": f"模拟站点 {n}"}) as r:
                if r.status != 201:
                    raise SystemExit(f"registering {tid}: HTTP {r.status} {await r.text()}")
            return tid

        ids += await asyncio.gather(*(add(n) for n in range(size - len(ids))))

        async def enroll(tid: str) -> None:
            async with sem:
                async with self.http.post(f"/api/v1/admin/terminals/{tid}/enrollment", json={},
                                          headers=admin) as r:
                    if r.status != 201:
                        raise SystemExit(f"code for {tid}: HTTP {r.status} {await r.text()}")
                    code = (await r.json())["code"]
                async with self.http.post("/api/v1/enroll", json={"code": code}) as r:
                    if r.status != 201:
                        raise SystemExit(f"enrolling {tid}: HTTP {r.status} {await r.text()}")
                    self.tokens[tid] = (await r.json())["token"]
                await self.catalog(Stats(), tid)  # an enrolled terminal fetches its catalog

        self.blob = content["sha256"]
        await asyncio.gather(*(enroll(t) for t in ids))

    def speaking_to(self, url: str, http: aiohttp.ClientSession) -> Fleet:
        """The same terminals (tokens, ETags, record numbers) through another client."""
        other = Fleet(url, http, self.admin)
        other.tokens, other.etags, other.seq, other.blob = self.tokens, self.etags, self.seq, self.blob
        return other

    def auth(self, tid: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[tid]}"}

    async def call(self, stats: Stats, name: str, method: str, path: str, *, ok: tuple[int, ...],
                   headers: dict[str, str] | None = None, data: bytes | None = None) -> bytes:
        t0 = time.perf_counter()
        try:
            async with self.http.request(method, path, headers=headers, data=data) as r:
                body = await r.read()
                stats.timed(name, time.perf_counter() - t0, r.status in ok,
                            f"HTTP {r.status} {body[:150]!r}")
                return body if r.status in ok else b""
        except (aiohttp.ClientError, TimeoutError) as e:
            stats.timed(name, time.perf_counter() - t0, False, repr(e))
            return b""

    async def heartbeat(self, stats: Stats, tid: str) -> None:
        body = msgspec.json.encode({
            "software_version": "sim-1", "terminal_clock": datetime.now(UTC).isoformat(),
            "disk_free": 40 << 30, "disk_total": 64 << 30,
            "cache": [{"sha256": self.blob, "state": "ready", "bytes_present": 1}],
            "outbox_backlog": 0, "status": "ok"})
        await self.call(stats, "heartbeat", "POST", f"/api/v1/terminals/{tid}/heartbeat", ok=(200,),
                        headers={**self.auth(tid), "Content-Type": "application/json"}, data=body)

    async def catalog(self, stats: Stats, tid: str) -> None:
        headers = self.auth(tid)
        if tid in self.etags:
            headers["If-None-Match"] = self.etags[tid]
        t0 = time.perf_counter()
        try:
            async with self.http.get(f"/api/v1/terminals/{tid}/catalog", headers=headers) as r:
                await r.read()
                if r.status == 200 and r.headers.get("ETag"):
                    self.etags[tid] = r.headers["ETag"]
                stats.timed("catalog", time.perf_counter() - t0, r.status in (200, 304),
                            f"HTTP {r.status}")
        except (aiohttp.ClientError, TimeoutError) as e:
            stats.timed("catalog", time.perf_counter() - t0, False, repr(e))

    def batch(self, tid: str, count: int, days_ago: float) -> tuple[bytes, list[str]]:
        now = datetime.now(UTC)
        records, ids = [], []
        for _ in range(count):
            self.seq[tid] += 1
            n = self.seq[tid]
            start = now - timedelta(days=days_ago, minutes=90 * n)
            rid = f"{tid}-{n}"
            ids.append(rid)
            records.append({"record_id": rid, "seq": n, "started_at": start.isoformat(),
                            "ended_at": (start + timedelta(minutes=40)).isoformat(),
                            "items": [{"sha256": self.blob, "watched_seconds": 2400.0}],
                            "attendees": [], "title": "模拟党课"})
        return msgspec.json.encode({"terminal_clock": now.isoformat(), "records": records}), ids

    async def attendance(self, stats: Stats, tid: str, body: bytes, ids: list[str],
                         *, count: bool = True) -> bool:
        """Deliver one batch; True when every record in it was acknowledged."""
        answer = await self.call(stats, "attendance", "POST", f"/api/v1/terminals/{tid}/attendance",
                                 ok=(200,), headers={**self.auth(tid), "Content-Type": "application/json"},
                                 data=body)
        acked = len(set(msgspec.json.decode(answer)["accepted"]) & set(ids)) if answer else 0
        if count:
            stats.records_sent += len(ids)
            stats.records_acked += acked
        return acked == len(ids)

    async def blob_range(self, stats: Stats, tid: str) -> None:
        await self.call(stats, "blob range", "GET", f"/blobs/{self.blob}", ok=(206,),
                        headers={**self.auth(tid), "Range": f"bytes=0-{RANGE - 1}"})


async def paced(fleet: Fleet, seconds: float, interval: float,
                tick: Callable[[str, int], Awaitable[None]]) -> None:
    """Each terminal ticks once per interval, at its own random phase, until `seconds` pass."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def one(tid: str) -> None:
        at = loop.time() + random.uniform(0, interval)
        n = 0
        while at < end:
            await asyncio.sleep(max(0.0, at - loop.time()))
            await tick(tid, n)
            n += 1
            at += interval

    await asyncio.gather(*(one(t) for t in fleet.tokens))


def stored_records(data_dir: Path) -> int:
    """Attendance rows in the database of the server on `data_dir` (its SQLite file, or
    YUANJIAO_DATABASE_URL as the server read it)."""
    engine = sqlalchemy.create_engine(normalise_url(
        load_config(None, os.environ, {"data_dir": data_dir}).database))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sqlalchemy.text("SELECT COUNT(*) FROM attendance")).scalar_one())
    finally:
        engine.dispose()


@dataclass
class PhaseResult:
    name: str
    stats: Stats
    seconds: float
    server_cpu: float
    client_cpu: float
    rss_mib: float
    database_cpu: float = 0.0


def prepare(tmp: Path) -> tuple[Path, str]:
    """A data directory under `tmp` with the sample county and one short video; the
    admin's API token. (`Fleet.setup` assigns the video to every terminal.)"""
    data = tmp / "data"
    run_cli("import-county", str(REPO / "demo" / "county"), data_dir=data)
    clip = tmp / "film.mp4"
    make_clip(clip)
    run_cli("add", str(clip), "--title", "模拟专题片", data_dir=data)
    admin = admin_token(data)
    assert admin is not None
    return data, admin


def client(server: Servers, args: argparse.Namespace) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(server.url, timeout=aiohttp.ClientTimeout(total=30),
                                 connector=aiohttp.TCPConnector(limit=args.connections))


def steady_tick(fleet: Fleet, stats: Stats) -> Callable[[str, int], Awaitable[None]]:
    """One terminal's tick of the steady load: a heartbeat and a catalog poll; one tick in
    ten an attendance batch of 2 records, one in twenty a 256 KiB blob range."""
    async def tick(tid: str, n: int) -> None:
        await fleet.heartbeat(stats, tid)
        await fleet.catalog(stats, tid)
        if random.random() < 0.1:
            body, ids = fleet.batch(tid, 2, days_ago=0)
            await fleet.attendance(stats, tid, body, ids)
        if random.random() < 0.05:
            await fleet.blob_range(stats, tid)
    return tick


async def run_fleet(size: int, args: argparse.Namespace) -> list[PhaseResult]:
    results: list[PhaseResult] = []

    async def measure(server: Servers, name: str,
                      work: Callable[[Stats], Awaitable[None]]) -> Stats:
        stats = Stats()
        cpu_s, cpu_c, t = server.cpu(), own_cpu(), time.perf_counter()
        cpu_d = postgres_cpu()
        await work(stats)
        seconds = time.perf_counter() - t
        results.append(PhaseResult(name, stats, seconds, server.cpu() - cpu_s,
                                   own_cpu() - cpu_c, server.rss_mib(),
                                   postgres_cpu() - cpu_d))
        return stats

    def steady(fleet: Fleet, seconds: float) -> Callable[[Stats], Awaitable[None]]:
        async def run(stats: Stats) -> None:
            await paced(fleet, seconds, args.interval, steady_tick(fleet, stats))
        return run

    with temp_dir("yj-fleet-") as tmp:
        data, admin = prepare(tmp)
        with Servers(data, tmp, args.processes) as server:
            async with client(server, args) as http:
                fleet = Fleet(server.url, http, admin)
                t0 = time.perf_counter()
                await fleet.setup(size)
                print(f"  {size} terminals registered and enrolled in {time.perf_counter() - t0:.1f} s",
                      flush=True)

                async def reference(stats: Stats) -> None:
                    async def tick(tid: str, _n: int) -> None:
                        await fleet.call(stats, "server info (reference)", "GET", "/api/v1/server",
                                         ok=(200,))
                    await paced(fleet, args.seconds, args.interval, tick)

                await measure(server, "reference", reference)
                steady_stats = await measure(server, "steady", steady(fleet, args.seconds))
        # The same terminals (tokens, ETags) meet a server process that remembers nothing.
        with Servers(data, tmp, args.processes) as server:
            async with client(server, args) as http:
                fleet = fleet.speaking_to(server.url, http)
                restart_stats = await measure(server, "restart", steady(fleet, args.interval))

                async def storm(stats: Stats) -> None:
                    async def one(tid: str) -> None:
                        body, ids = fleet.batch(tid, args.storm_records, days_ago=7)
                        stats.records_sent += len(ids)
                        delay = 1.0
                        # As a terminal's outbox does: send again with backoff until acknowledged.
                        while not await fleet.attendance(stats, tid, body, ids, count=False):
                            stats.retries += 1
                            await asyncio.sleep(random.uniform(0, delay))
                            delay = min(delay * 2, 30.0)
                        stats.records_acked += len(ids)
                        if random.random() < 0.1:  # the acknowledgement was lost: sent again
                            await fleet.attendance(stats, tid, body, ids, count=False)
                        await fleet.heartbeat(stats, tid)
                        await fleet.catalog(stats, tid)
                    await asyncio.gather(*(one(t) for t in fleet.tokens))

                phases = [steady_stats, restart_stats]
                if args.storm_records:
                    phases.append(await measure(server, "storm", storm))
        sent = sum(ph.records_sent for ph in phases)
        acked = sum(ph.records_acked for ph in phases)
        stored = stored_records(data)
        print(f"  records sent {sent:,}, acknowledged {acked:,}, stored {stored:,}"
              f" ({'exactly once' if sent == acked == stored else 'MISMATCH'})", flush=True)
        results[-1].stats.records_sent, results[-1].stats.records_acked = sent, acked
        results.append(PhaseResult("stored", Stats(records_sent=stored), 0, 0, 0, 0))
    return results


async def run_soak(size: int, args: argparse.Namespace) -> list[list[object]]:
    """The steady load for `args.soak` minutes; rows of (minute, requests, errors, p99 ms,
    server RSS MiB, server CPU %), one per minute."""
    rows: list[list[object]] = []
    with temp_dir("yj-soak-") as tmp:
        data, admin = prepare(tmp)
        with Servers(data, tmp, args.processes) as server:
            async with client(server, args) as http:
                fleet = Fleet(server.url, http, admin)
                await fleet.setup(size)
                stats = Stats()
                load = asyncio.create_task(paced(fleet, args.soak * 60, args.interval,
                                                 steady_tick(fleet, stats)))
                for minute in range(1, int(args.soak) + 1):
                    cpu0 = server.cpu()
                    done = {k: len(stats.latencies[k]) for k in ("heartbeat", "catalog")}
                    await asyncio.sleep(60)
                    lat = [x for k, n in done.items() for x in stats.latencies[k][n:]]
                    rows.append([minute, len(lat), sum(stats.errors.values()), pct(lat, 99),
                                 server.rss_mib(),
                                 100 * (server.cpu() - cpu0) / 60])
                    print("  minute {}: {} requests, errors {}, p99 {:.1f} ms, RSS {:.1f} MiB, "
                          "CPU {:.0f} %".format(*rows[-1]), flush=True)
                await load
        stored = stored_records(data)
        print(f"  records sent {stats.records_sent:,}, acknowledged {stats.records_acked:,}, "
              f"stored {stored:,}", flush=True)
    return rows


def report(engine: str, size: int, results: list[PhaseResult]) -> list[list[object]]:
    rows: list[list[object]] = []
    for ph in results:
        if ph.name == "stored":
            continue
        for name, lat in sorted(ph.stats.latencies.items()):
            rows.append([engine, size, ph.name, name, len(lat), ph.stats.errors.get(name, 0),
                         pct(lat, 50), pct(lat, 95), pct(lat, 99),
                         len(lat) / ph.seconds if ph.seconds else 0,
                         100 * ph.server_cpu / ph.seconds, 100 * ph.database_cpu / ph.seconds,
                         100 * ph.client_cpu / ph.seconds, ph.rss_mib])
        for sample in ph.stats.error_samples:
            print(f"  error ({ph.name}): {sample}")
        if ph.stats.retries:
            print(f"  {ph.name}: {ph.stats.retries} batches sent again after a failure; "
                  f"drained in {ph.seconds:.1f} s")
    return rows


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="211 and 2,110 terminals, short phases")
    ap.add_argument("--fleets", default="211,2110,20000", help="fleet sizes, comma-separated")
    ap.add_argument("--seconds", type=float, default=120.0, help="length of each paced phase")
    ap.add_argument("--interval", type=float, default=60.0, help="heartbeat and catalog interval, s")
    ap.add_argument("--storm-records", type=int, default=50,
                    help="records per terminal in the storm (0: no storm)")
    ap.add_argument("--connections", type=int, default=256, help="keep-alive connections in the pool")
    ap.add_argument("--processes", type=int, default=1,
                    help="server processes on the same data; more than one: nginx in front")
    ap.add_argument("--soak", type=float, default=0,
                    help="minutes of steady load alone, RSS printed each minute (0: no soak)")
    ap.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both",
                    help="the server's database (both: SQLite first, then PostgreSQL)")
    args = ap.parse_args()
    if args.quick:
        args.fleets, args.seconds, args.interval = "211,2110", 20.0, 10.0
    print(f"# {machine()}; interval {args.interval:g} s, phases of {args.seconds:g} s, "
          f"storm of {args.storm_records} records per terminal; {args.processes} server "
          f"process{'es behind nginx' if args.processes > 1 else ''}")
    header = ["engine", "terminals", "phase", "endpoint", "requests", "errors", "p50 ms", "p95 ms",
              "p99 ms", "req/s", "server CPU %", "database CPU %", "client CPU %", "server RSS MiB"]
    rows: list[list[object]] = []
    failed = False
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    if "postgresql" in engines and not pg_cluster.available():
        print("# PostgreSQL is not installed here: SQLite only")
        engines.remove("postgresql")
    cluster = pg_cluster.PgCluster(durable=True, max_connections=100) if "postgresql" in engines else None
    if cluster is not None:
        cluster.start()
    try:
        for engine, size in ((e, int(s)) for e in engines for s in args.fleets.split(",")):
            if args.soak:
                failed |= await one_soak(engine, size, args, cluster)
            else:
                failed |= await one_fleet(engine, size, args, cluster, rows)
    finally:
        if cluster is not None:
            cluster.remove()
    if rows:
        print(table(header, rows))
    return 1 if failed else 0


def use_engine(engine: str, cluster: pg_cluster.PgCluster | None) -> None:
    if cluster is not None and engine == "postgresql":
        os.environ["YUANJIAO_DATABASE_URL"] = cluster.fresh_url()  # the server and the CLI
    else:
        os.environ.pop("YUANJIAO_DATABASE_URL", None)


async def one_soak(engine: str, size: int, args: argparse.Namespace,
                   cluster: pg_cluster.PgCluster | None) -> bool:
    """A soak of one engine and fleet size; True when memory grew or something failed."""
    use_engine(engine, cluster)
    print(f"== soak: {engine}, {size} terminals, {args.soak:g} min", flush=True)
    rows = await run_soak(size, args)
    print(table(["minute", "requests", "errors", "p99 ms", "server RSS MiB", "server CPU %"], rows))
    first, last = rows[0][4], rows[-1][4]
    assert isinstance(first, float) and isinstance(last, float)
    growth = last - first
    # flat: the last minute within 10 % of the first (caches fill in the first minutes)
    flat = growth <= 0.1 * first
    print(f"  RSS minute 1 {first:.1f} MiB, minute {len(rows)} {last:.1f} MiB "
          f"(ratio {last / first:.2f}): {'flat' if flat else 'GREW'}", flush=True)
    return not flat or any(r[2] for r in rows)


async def one_fleet(engine: str, size: int, args: argparse.Namespace,
                    cluster: pg_cluster.PgCluster | None, rows: list[list[object]]) -> bool:
    """One engine and fleet size; adds its rows, returns True when something failed."""
    failed = False
    use_engine(engine, cluster)
    print(f"== {engine}, {size} terminals", flush=True)
    results = await run_fleet(size, args)
    rows += report(engine, size, results)
    stored = results[-1].stats.records_sent
    storm = results[-2].stats
    failed |= not (storm.records_sent == storm.records_acked == stored)
    failed |= any(ph.stats.errors for ph in results if ph.name != "storm")
    phase = {ph.name: ph for ph in results}
    worst = max(pct(v, 99) for v in phase["steady"].stats.latencies.values())
    ref99 = pct(next(iter(phase["reference"].stats.latencies.values())), 99)
    after = max(pct(v, 99) for v in phase["restart"].stats.latencies.values())
    print(f"  steady p99 (worst endpoint) {worst:.1f} ms; reference p99 {ref99:.1f} ms; "
          f"ratio {worst / ref99:.2f}; target < {TARGET_P99_MS:.0f} ms: "
          f"{'met' if worst < TARGET_P99_MS else 'missed'}; first interval after a restart: "
          f"p99 {after:.1f} ms", flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

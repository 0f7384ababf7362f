"""Attendance ingest over HTTP against raw sqlite3 `executemany`, both synchronous=FULL.

    python3 bench/bench_ingest.py [--quick] [--batches N] [--clients C] [--attendees A]
                                  [--items I] [--runs R]

The server gets the sample county (`import-county demo/county`: 211 terminal points)
and runs as its own process. The client, in this process, plays every terminal at once:
each sends its batches of 100 records one after another to
`POST /api/v1/terminals/{id}/attendance` (so up to 211 batches are in flight), and
checks that every record id is acknowledged. The server commits before it answers
(grouped commits, WAL, synchronous=FULL). Request bodies are encoded before the clock
starts, so the figure is the server's.

The server runs on its embedded default (SQLite, in its data directory) unless
YUANJIAO_DATABASE_URL names a PostgreSQL database; the reference is raw SQLite either
way, so only on SQLite is the ratio one of layers over the same engine.

The reference stores the same rows in the same tables (the server's SQLite schema, from
its own migrations) with sqlite3 `executemany`, WAL and synchronous=FULL, in this
process: once with a commit per batch of 100 records (each batch durable on its own, as
one terminal's request is), and once as a single transaction (the ceiling).
Target: at least 50,000 records/s over HTTP. The server's resident memory is printed
after every run (it must stay flat) with its peak; target: under 100 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import msgspec
import sqlalchemy
from _common import (
    REPO,
    ServerProcess,
    admin_token,
    enroll_terminals,
    machine,
    median,
    memory_kib,
    reset_peak,
    run_cli,
    table,
    temp_dir,
)

sys.path.insert(0, str(REPO))
from server.config import load_config
from server.db import normalise_url
from server.migrations import MIGRATIONS

TARGET = 50_000
TARGET_RSS_MB = 100
BATCH = 100
BASE = datetime(2025, 11, 1, 1, 0, tzinfo=UTC)
CONTENT = [hashlib.sha256(f"film {i}".encode()).hexdigest() for i in range(4)]


@dataclass(frozen=True)
class Shape:
    attendees: int
    items: int


def terminal_ids() -> list[str]:
    with open(REPO / "demo" / "county" / "villages.csv", encoding="utf-8") as f:
        return [f"T{row['code']}" for row in csv.DictReader(f) if row["has_terminal"] == "yes"]


def record(terminal: str, n: int, shape: Shape, run: int) -> dict[str, object]:
    start = BASE + timedelta(minutes=90 * n)
    return {
        "record_id": f"r{run}-{n}",
        "seq": n,
        "started_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ended_at": (start + timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "items": [{"sha256": CONTENT[(n + i) % len(CONTENT)], "watched_seconds": 1800.0 + i}
                  for i in range(shape.items)],
        "attendees": [f"{terminal[1:]}{(n + k) % 46:03d}" for k in range(shape.attendees)],
        "session_id": None,
        "title": "冬训党课",
    }


def bodies(terminals: list[str], batches: int, shape: Shape, run: int) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for t in terminals:
        out[t] = [msgspec.json.encode({
            "terminal_clock": "2026-03-01T08:00:00Z",
            "records": [record(t, b * BATCH + i, shape, run) for i in range(BATCH)],
        }) for b in range(batches)]
    return out


async def send_all(url: str, work: dict[str, list[bytes]], tokens: dict[str, str]) -> float:
    """Every terminal sends its batches in turn; all terminals at once. Returns seconds."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=600)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as http:

        async def terminal(tid: str, batches: list[bytes]) -> None:
            for body in batches:
                auth = {"Authorization": f"Bearer {tokens[tid]}"} if tokens else {}
                async with http.post(f"/api/v1/terminals/{tid}/attendance", data=body,
                                     headers={**headers, **auth}) as r:
                    answer = await r.read()
                    if r.status != 200:
                        raise SystemExit(f"{tid}: HTTP {r.status}: {answer[:300]!r}")
                    if len(msgspec.json.decode(answer)["accepted"]) != BATCH:
                        raise SystemExit(f"{tid}: not every record was acknowledged")

        t0 = time.perf_counter()
        await asyncio.gather(*(terminal(t, b) for t, b in work.items()))
        return time.perf_counter() - t0


def count_rows(data_dir: Path) -> int:
    """Attendance rows in the database of the server on `data_dir` (its SQLite file, or
    YUANJIAO_DATABASE_URL as the server reads it)."""
    engine = sqlalchemy.create_engine(normalise_url(
        load_config(None, os.environ, {"data_dir": data_dir}).database))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sqlalchemy.text("SELECT COUNT(*) FROM attendance")).scalar_one())
    finally:
        engine.dispose()


def schema(scratch: Path) -> list[str]:
    """The server's SQLite DDL of the attendance tables, from its own migrations."""
    conn = sqlite3.connect(scratch)
    try:
        for m in MIGRATIONS:
            conn.executescript(m.sqlite)
        return [row[0] for row in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name LIKE 'attendance%' AND sql IS NOT NULL "
            "ORDER BY type = 'index', name")]
    finally:
        conn.close()
        scratch.unlink()


Rows = tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, ...]]]


def rows_of(work: dict[str, list[bytes]]) -> list[Rows]:
    """The rows the server stores for each batch, built outside the timed part."""
    out = []
    for tid, batches in work.items():
        for body in batches:
            batch = msgspec.json.decode(body)
            att, items, members = [], [], []
            for n, r in enumerate(batch["records"]):
                digest = hashlib.sha256(msgspec.json.encode(r)).hexdigest()
                att.append((tid, r["record_id"], r["seq"], r["session_id"], r["title"],
                            r["started_at"], r["ended_at"],
                            sum(i["watched_seconds"] for i in r["items"]),
                            batch["terminal_clock"], "2026-03-01T08:00:01Z", digest))
                items += [(n, i["sha256"], i["watched_seconds"]) for i in r["items"]]
                members += [(n, m) for m in r["attendees"]]
            out.append((att, items, members))
    return out


def raw_sqlite(path: Path, ddl: list[str], terminals: list[str], batches: list[Rows],
               commit_each: bool) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("CREATE TABLE terminals (id TEXT PRIMARY KEY)")
        for statement in ddl:
            conn.execute(statement)
        conn.executemany("INSERT INTO terminals VALUES (?)", [(t,) for t in terminals])
        t0 = time.perf_counter()
        if not commit_each:
            conn.execute("BEGIN IMMEDIATE")
        for att, items, members in batches:
            if commit_each:
                conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO attendance (terminal_id, record_id, seq, session_id, title, "
                             "started_at, ended_at, watched_seconds, terminal_clock, received_at, "
                             "digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", att)
            # Rows get consecutive ids: nothing else writes to this database.
            first = conn.execute("SELECT max(id) FROM attendance").fetchone()[0] - len(att) + 1
            conn.executemany("INSERT INTO attendance_items (attendance_id, sha256, watched_seconds) "
                             "VALUES (?, ?, ?)", [(first + n, sha, w) for n, sha, w in items])
            conn.executemany("INSERT INTO attendance_members (attendance_id, member_no) VALUES (?, ?)",
                             [(first + n, m) for n, m in members])
            if commit_each:
                conn.execute("COMMIT")
        if not commit_each:
            conn.execute("COMMIT")
        return time.perf_counter() - t0
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer batches and runs (about 20 s)")
    p.add_argument("--batches", type=int, help="batches of 100 per terminal per run (default 10, quick 3)")
    p.add_argument("--clients", type=int, default=211, help="terminals sending at once (at most 211)")
    p.add_argument("--attendees", type=int, default=10, help="members signed in per record")
    p.add_argument("--items", type=int, default=1, help="content items watched per record")
    p.add_argument("--runs", type=int, help="runs of each (default 3, quick 1)")
    args = p.parse_args()
    batches = args.batches or (3 if args.quick else 10)
    runs = args.runs or (1 if args.quick else 3)
    shape = Shape(args.attendees, args.items)
    terminals = terminal_ids()[: args.clients]
    per_run = len(terminals) * batches * BATCH

    print(f"machine: {machine()}")
    print(f"{len(terminals)} terminals x {batches} batches x {BATCH} records = {per_run:,} records "
          f"per run; each record: {shape.items} item(s), {shape.attendees} attendees; {runs} run(s)")
    http_rates, per_batch, one_txn = [], [], []
    with temp_dir("yuanjiao-bench-ingest-") as tmp:
        data = tmp / "data"
        run_cli("import-county", str(REPO / "demo" / "county"), data_dir=data)
        admin = admin_token(data)
        with ServerProcess(data, tmp / "server.log") as server:
            tokens = asyncio.run(enroll_terminals(server.url, admin, terminals))
            startup_peak = reset_peak(server.pid)
            warm = bodies(terminals, 1, shape, run=-1)
            asyncio.run(send_all(server.url, warm, tokens))
            for run in range(runs):
                work = bodies(terminals, batches, shape, run)
                secs = asyncio.run(send_all(server.url, work, tokens))
                http_rates.append(per_run / secs)
                rss_now = memory_kib(server.pid)["VmRSS"] * 1024 / 1e6
                print(f"  HTTP ingest                     {per_run / secs:9,.0f} records/s "
                      f"({secs:.2f} s; server RSS now {rss_now:.0f} MB)", flush=True)
                rows = rows_of(work)
                ddl = schema(tmp / "schema.sqlite3")
                secs = raw_sqlite(tmp / "raw.sqlite3", ddl, terminals, rows, commit_each=True)
                per_batch.append(per_run / secs)
                print(f"  sqlite3, a commit per batch     {per_run / secs:9,.0f} records/s", flush=True)
                secs = raw_sqlite(tmp / "raw.sqlite3", ddl, terminals, rows, commit_each=False)
                one_txn.append(per_run / secs)
                print(f"  sqlite3, one transaction        {per_run / secs:9,.0f} records/s", flush=True)
            rss = memory_kib(server.pid)["VmHWM"]
        stored = count_rows(data)
    expected = per_run * runs + len(terminals) * BATCH
    if stored != expected:
        raise SystemExit(f"the server holds {stored} records, expected {expected}")

    http = median(http_rates)
    rows_out: list[list[object]] = [
        ["HTTP ingest (server, grouped commits)", http, max(http_rates), "1.00x"],
        ["sqlite3 executemany, commit per batch", median(per_batch), max(per_batch),
         f"{http / median(per_batch):.2f}x"],
        ["sqlite3 executemany, one transaction", median(one_txn), max(one_txn),
         f"{http / median(one_txn):.2f}x"],
    ]
    print()
    print(table(["", "records/s (median)", "best", "server / this"], rows_out))
    print()
    peak_mb = rss * 1024 / 1e6
    print(f"all {stored:,} records stored once; server RSS peak {peak_mb:.0f} MB "
          f"({startup_peak * 1024 / 1e6:.0f} MB during start-up): target < {TARGET_RSS_MB} MB "
          f"{'met' if peak_mb < TARGET_RSS_MB else 'MISSED'}")
    print(f"target: >= {TARGET:,} records/s over HTTP with synchronous=FULL: {http:,.0f} "
          f"{'met' if http >= TARGET else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

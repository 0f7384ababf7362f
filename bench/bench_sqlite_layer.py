"""The server's data layer against the SQLite layer it grew from and aiosqlite, for
durable writes.

    python3 bench/bench_sqlite_layer.py [--quick] [--writers W] [--batches B] [--rows R]
                                        [--no-postgresql]

W asyncio tasks (terminals, in effect) each write B batches of R rows, one after another;
a batch counts only once it is durable (WAL, synchronous=FULL: the commit has been
fsynced), as an attendance batch is before the server answers. Three ways, same table,
same rows, each on a fresh file:

* `shared.sqlite.Database.write` (the terminal's layer, and the server's before it moved
  to SQLAlchemy): one writer thread folds every waiting batch into one transaction (a
  savepoint each) and commits once; the reference;
* `server.db.Database.write` on SQLite: the same grouping over SQLAlchemy Core (the
  server's layer now: ingest before and after the move);
* `server.db.Database.write` on PostgreSQL (a throwaway cluster, fsync on), where the
  packages are installed;
* aiosqlite, one connection, a transaction per batch (how aiosqlite is normally used:
  its one thread runs the calls in order, so each batch pays its own fsync);
* aiosqlite, a connection per writer (each writer its own thread; SQLite then
  serialises them on the write lock, `busy_timeout` 30 s).

Prints batches/s and rows/s for each, and the ratio of each way to the reference. The
result is recorded in docs/decisions.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite
from _common import REPO, machine, table
from sqlalchemy import Connection, text

from server import db as server_db
from shared.sqlite import Database, Migration

sys.path.insert(0, str(REPO))
from tests import pg_cluster  # the repository's test helpers (not installed)

SCHEMA = "CREATE TABLE rec (terminal INTEGER, seq INTEGER, payload TEXT, PRIMARY KEY (terminal, seq))"
INSERT = "INSERT INTO rec (terminal, seq, payload) VALUES (?, ?, ?)"


def rows_for(writer: int, batch: int, rows: int) -> list[tuple[int, int, str]]:
    return [(writer, batch * rows + i, f"record {writer}-{batch}-{i} " + "x" * 80) for i in range(rows)]


async def run_writers(writers: int, batches: int, rows: int,
                      write: Callable[[int, list[tuple[int, int, str]]], Awaitable[None]]) -> float:
    async def one(w: int) -> None:
        for b in range(batches):
            await write(w, rows_for(w, b, rows))

    t0 = time.perf_counter()
    await asyncio.gather(*(one(w) for w in range(writers)))
    return time.perf_counter() - t0


async def project_layer(path: Path, writers: int, batches: int, rows: int) -> float:
    async with Database(path, [Migration("0001", SCHEMA)]) as db:
        async def write(_w: int, data: list[tuple[int, int, str]]) -> None:
            def fn(conn: sqlite3.Connection) -> None:
                conn.executemany(INSERT, data)
            await db.write(fn)
        return await run_writers(writers, batches, rows, write)


NAMED_INSERT = text("INSERT INTO rec (terminal, seq, payload) VALUES (:t, :s, :p)")
PG_SCHEMA = "CREATE TABLE rec (terminal BIGINT, seq BIGINT, payload TEXT, PRIMARY KEY (terminal, seq));"


async def server_layer(url: str, writers: int, batches: int, rows: int) -> float:
    steps = [server_db.Migration("0001", sqlite=SCHEMA + ";", postgresql=PG_SCHEMA)]
    async with server_db.Database(url, steps) as db:
        async def write(_w: int, data: list[tuple[int, int, str]]) -> None:
            params = [{"t": t, "s": s, "p": p} for t, s, p in data]

            def fn(conn: Connection) -> None:
                server_db.executemany(conn, NAMED_INSERT, params)
            await db.write(fn)
        return await run_writers(writers, batches, rows, write)


async def _open(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None, timeout=30)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=FULL")
    await conn.execute("PRAGMA busy_timeout=30000")
    return conn


async def aiosqlite_shared(path: Path, writers: int, batches: int, rows: int) -> float:
    conn = await _open(path)
    await conn.execute(SCHEMA)
    lock = asyncio.Lock()  # one connection: one transaction at a time

    async def write(_w: int, data: list[tuple[int, int, str]]) -> None:
        async with lock:
            await conn.execute("BEGIN IMMEDIATE")
            await conn.executemany(INSERT, data)
            await conn.execute("COMMIT")

    try:
        return await run_writers(writers, batches, rows, write)
    finally:
        await conn.close()


async def aiosqlite_per_writer(path: Path, writers: int, batches: int, rows: int) -> float:
    setup = await _open(path)
    await setup.execute(SCHEMA)
    await setup.close()
    conns = [await _open(path) for _ in range(writers)]

    async def write(w: int, data: list[tuple[int, int, str]]) -> None:
        conn = conns[w]
        await conn.execute("BEGIN IMMEDIATE")
        await conn.executemany(INSERT, data)
        await conn.execute("COMMIT")

    try:
        return await run_writers(writers, batches, rows, write)
    finally:
        for c in conns:
            await c.close()


def count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM rec").fetchone()[0])


def count_postgresql(url: str) -> int:
    import sqlalchemy as sa
    engine = sa.create_engine(server_db.normalise_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM rec")).scalar_one())
    finally:
        engine.dispose()


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run")
    ap.add_argument("--writers", type=int, default=64)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--no-postgresql", action="store_true", help="leave PostgreSQL out")
    args = ap.parse_args()
    if args.quick:
        args.writers, args.batches = 32, 5
    print(f"# {machine()}; {args.writers} writers x {args.batches} batches x {args.rows} rows, "
          "WAL, synchronous=FULL")
    ways: list[tuple[str, Callable[[Path, int, int, int], Awaitable[float]]]] = [
        ("shared.sqlite (grouped commits)", project_layer),
        ("server.db on SQLite (SQLAlchemy, grouped)",
         lambda p, w, b, r: server_layer(server_db.sqlite_url(p), w, b, r)),
        ("aiosqlite, one connection", aiosqlite_shared),
        ("aiosqlite, connection per writer", aiosqlite_per_writer),
    ]
    total_batches = args.writers * args.batches
    results: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="yj-sqlite-bench-") as tmp:
        for i, (name, fn) in enumerate(ways):
            path = Path(tmp) / f"{i}.sqlite3"
            seconds = await fn(path, args.writers, args.batches, args.rows)
            stored = count(path)
            if stored != total_batches * args.rows:
                print(f"{name}: stored {stored} rows, expected {total_batches * args.rows}")
                return 1
            results.append((name, seconds))
    if not args.no_postgresql and pg_cluster.available():
        with pg_cluster.PgCluster(durable=True) as cluster:
            url = cluster.fresh_url()
            seconds = await server_layer(url, args.writers, args.batches, args.rows)
            stored = count_postgresql(url)
            if stored != total_batches * args.rows:
                print(f"PostgreSQL: stored {stored} rows, expected {total_batches * args.rows}")
                return 1
            results.append(("server.db on PostgreSQL 15 (fsync on)", seconds))
    base = results[0][1]
    print(table(["way", "seconds", "batches/s", "rows/s", "ratio to shared.sqlite"],
                [(n, s, total_batches / s, total_batches * args.rows / s, base / s) for n, s in results]))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

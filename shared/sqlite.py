"""SQLite for an asyncio program: concurrent readers, one writer, grouped commits.

Handlers never touch a connection. They pass a plain function to `read()` or `write()`:

* reads run on a small pool of threads, each with its own connection (WAL lets them
  run beside the writer);
* writes are queued to one writer thread. It takes every write waiting in the queue,
  runs each inside its own SAVEPOINT within one `BEGIN IMMEDIATE` transaction, then
  commits once. A failing write rolls back to its savepoint alone; the others commit.
  With `synchronous=FULL` each commit is durable, and grouping many writers into one
  commit is what lets durable ingest keep up with many terminals.

Migrations are named and applied in order, each recorded in the `migrations` table.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from shared.ratelog import RepeatingLog
from shared.writequeue import DatabaseClosed, Job, WriteQueue, settle

__all__ = ["Database", "DatabaseClosed", "Migration"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str


def _connect(path: Path, *, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class Database:
    def __init__(
        self,
        path: Path,
        migrations: Sequence[Migration],
        *,
        readers: int = 3,
        synchronous: str = "FULL",
    ) -> None:
        self.path = path
        self._migrations = migrations
        self._synchronous = synchronous
        self._queue: WriteQueue[sqlite3.Connection] = WriteQueue()
        self._writer: threading.Thread | None = None
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="sqlite-read")
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._failures = RepeatingLog(log)  # a full disk fails every commit: log it once

    async def __aenter__(self) -> Database:
        await self.async_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.async_close()

    async def async_open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writer = threading.Thread(
            target=self._run_writer, args=(ready, asyncio.get_running_loop()),
            name="sqlite-write", daemon=True,
        )
        self._writer.start()
        await ready

    async def async_close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.close()
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    # --- reads ------------------------------------------------------------------------

    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, synchronous=self._synchronous)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        return conn

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise DatabaseClosed("database is closed")

        def run() -> T:
            conn = self._reader_conn()
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    # --- writes -----------------------------------------------------------------------

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in the writer's transaction; return once it is committed."""
        if self._closed:
            raise DatabaseClosed("database is closed")
        return await self._queue.submit(fn)

    def _run_writer(self, ready: asyncio.Future[None], loop: asyncio.AbstractEventLoop) -> None:
        try:
            conn = _connect(self.path, synchronous=self._synchronous)
            self._migrate(conn)
        except BaseException as e:  # report to the opener, then stop
            loop.call_soon_threadsafe(settle, ready, None, e)
            return
        loop.call_soon_threadsafe(settle, ready, None, None)
        try:
            for group in self._queue.groups():
                self._run_group(conn, group)
        finally:
            conn.close()

    def _run_group(self, conn: sqlite3.Connection, group: list[Job[sqlite3.Connection]]) -> None:
        results: list[tuple[Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in group:
                conn.execute("SAVEPOINT job")
                try:
                    results.append((job.fn(conn), None))
                    conn.execute("RELEASE job")
                except Exception as e:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    results.append((None, e))
            conn.execute("COMMIT")
        except Exception as e:
            self._failures.event(f"{type(e).__name__}: {e}", "write transaction failed: %s", e,
                                 level=logging.ERROR, exc_info=e)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            results = [(None, e)] * len(group)
        for job, (value, err) in zip(group, results, strict=True):
            job.answer(value, err)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
        for m in self._migrations:
            if m.name in done:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(m.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                    (m.name, datetime.now(UTC).isoformat()),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            log.info("applied migration %s", m.name)


def _split_sql(sql: str) -> list[str]:
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements

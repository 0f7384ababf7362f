"""The server's database: SQLite (the embedded default) or PostgreSQL, behind one API.

Handlers never hold a connection. They pass a plain function to `read()` or `write()`,
and that function gets a SQLAlchemy Core `Connection` already inside a transaction:

* reads run on a small pool of threads, each in its own read transaction (a snapshot:
  SQLite's WAL reader, PostgreSQL's REPEATABLE READ READ ONLY); the short reads of a
  fleet's hot path may go through `read_together()`, which reads those that arrive
  while others are being read as one group: one thread hop and one transaction for all;
* writes are queued to one writer thread per process. It takes every write waiting in
  the queue, runs each inside its own SAVEPOINT within one transaction, then commits
  once (a write waiting alone needs no savepoint). A failing write rolls back to its
  savepoint alone; the others commit. On SQLite
  (`synchronous=FULL`) each commit is an fsync, and grouping many writers into one commit
  is what lets durable ingest keep up with many terminals; on PostgreSQL the grouping
  saves round trips and WAL flushes the same way.

Queries are `sqlalchemy.text()` with named binds in SQL both engines read alike (the
conventions are in docs/scaling.md). The engine is chosen by one setting, a database URL
(RFC 1738 form, as SQLAlchemy reads it): `sqlite:///path/to/file` or
`postgresql://user:password@host:port/name` (driven by psycopg 3).

Migrations are named and applied in order, each recorded in the `migrations` table; each
carries the SQL for both engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from server.queries import scope_statements
from shared.ratelog import RepeatingLog
from shared.writequeue import DatabaseClosed, Job, WriteQueue, settle

__all__ = [
    "Database", "DatabaseClosed", "Migration", "after_commit", "executemany", "normalise_url",
    "sqlite_url",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Dialect = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class Migration:
    """One schema step. `sqlite` and `postgresql` are scripts of `;`-ended statements;
    an empty script is a step that engine does not need (see server/migrations.py)."""

    name: str
    sqlite: str
    postgresql: str


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def normalise_url(url: str) -> str:
    """`postgresql://...` (and `postgres://...`) means psycopg 3; SQLite needs a file path.

    Raises ValueError with a sentence a person can act on for anything else."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as e:
        raise ValueError(f"is not a database URL ({e})") from e
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError("needs a file: sqlite:///path/to/yuanjiao.sqlite3")
        return parsed.set(drivername="sqlite+pysqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        if parsed.get_driver_name() not in ("psycopg", "postgresql", "postgres"):
            raise ValueError("PostgreSQL is driven by psycopg 3: postgresql+psycopg://...")
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError("must be sqlite:///<file> or postgresql://user:password@host/name")


class Database:
    """One database, SQLite or PostgreSQL by `url`; an async context manager.

    `read(fn)` and `write(fn)` return what `fn(connection)` returns, or raise what it
    raised (SQLAlchemy's exceptions: `IntegrityError`, `OperationalError`, ...);
    `DatabaseClosed` once closed. A write returns once it is committed."""

    def __init__(
        self,
        url: str,
        migrations: Sequence[Migration],
        *,
        readers: int | None = None,
        synchronous: str = "FULL",
    ) -> None:
        self.url = normalise_url(url)
        self.dialect: Dialect = (
            "sqlite" if self.url.startswith("sqlite") else "postgresql"
        )
        self._migrations = migrations
        self._synchronous = synchronous
        # SQLite reads are CPU under the GIL: a few threads. PostgreSQL reads are mostly
        # round trips: more threads overlap them (2,110 terminals: catalog p50 326 ms with 3).
        self._readers_n = readers or (3 if self.dialect == "sqlite" else 8)
        self._queue: WriteQueue[Connection] = WriteQueue()
        self._writer: threading.Thread | None = None
        self._readers = ThreadPoolExecutor(max_workers=self._readers_n, thread_name_prefix="db-read")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._reader_conns: list[Connection] = []
        self._read_engine: Engine | None = None
        self._write_engine: Engine | None = None
        self._closed = False
        self._failures = RepeatingLog(log)  # a full disk fails every commit: log it once
        # read_together(): the reads waiting for a group, and how many groups are being read
        self._together: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]] = []
        self._groups_reading = 0
        self._groups_at_once = max(1, self._readers_n - 1)  # one reader kept for the rest
        self.groups_read = 0  # groups read so far (for tests and benchmarks)

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None on PostgreSQL."""
        if self.dialect != "sqlite":
            return None
        return Path(make_url(self.url).database or "")

    async def __aenter__(self) -> Database:
        await self.async_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.async_close()

    async def async_open(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._read_engine, self._write_engine = self._engines()
        for engine in (self._read_engine, self._write_engine):
            scope_statements(engine)  # a county's statements without the province's alternative
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._writer = threading.Thread(
            target=self._run_writer, args=(ready, loop), name="db-write", daemon=True,
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
        for conn in self._reader_conns:
            conn.close()
        for engine in (self._read_engine, self._write_engine):
            if engine is not None:
                engine.dispose()

    def _engines(self) -> tuple[Engine, Engine]:
        if self.dialect == "sqlite":
            reader = sa.create_engine(self.url, poolclass=QueuePool, pool_size=self._readers_n,
                                      max_overflow=0, connect_args={"timeout": 30})
            writer = sa.create_engine(self.url, poolclass=QueuePool, pool_size=1,
                                      max_overflow=0, connect_args={"timeout": 30})
            _sqlite_setup(reader, self._synchronous, begin="BEGIN", query_only=True)
            _sqlite_setup(writer, self._synchronous, begin="BEGIN IMMEDIATE", query_only=False)
            return reader, writer
        # pool_pre_ping: after PostgreSQL restarts, a dead pooled connection is noticed
        # and replaced before use, so the server recovers without a restart of its own.
        # No JIT: the server's statements are short, and compiling one costs more than
        # running it (the trained-month fold: 317 ms of JIT for a 10 ms statement, whenever
        # the planner's estimate crosses jit_above_cost, as on tables not yet analysed).
        given = make_url(self.url).query.get("options", ())  # e.g. a search_path: kept
        options = {"options": " ".join([*((given,) if isinstance(given, str) else given),
                                         "-c jit=off"])}
        reader = sa.create_engine(
            self.url, pool_size=self._readers_n, max_overflow=0, pool_pre_ping=True,
            isolation_level="REPEATABLE READ", execution_options={"postgresql_readonly": True},
            connect_args=options,
        )
        writer = sa.create_engine(self.url, pool_size=1, max_overflow=0, pool_pre_ping=True,
                                  isolation_level="READ COMMITTED", connect_args=options)
        return reader, writer

    # --- reads ------------------------------------------------------------------------

    async def read(self, fn: Callable[[Connection], T]) -> T:
        if self._closed or self._read_engine is None:
            raise DatabaseClosed("database is closed")
        engine = self._read_engine

        def run() -> T:
            # Each reader thread keeps its connection: a checkout from the pool (and the
            # rollback the pool sends at checkin) per read cost more than most reads.
            conn: Connection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = engine.connect()
                with self._lock:
                    self._reader_conns.append(conn)
            try:
                with conn.begin():
                    return fn(conn)
            except sa.exc.DBAPIError as e:
                if not e.connection_invalidated:
                    raise
            # The kept connection died (PostgreSQL restarted): a read changes nothing,
            # so it is simply run again on a new one.
            with conn.begin():
                return fn(conn)

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def read_together(self, fn: Callable[[Connection], T]) -> T:
        """`read(fn)` for the short reads many requests make at once (a token's look-up,
        a terminal's catalog). While a group of them is being read (at most one reader
        thread fewer than there are, so a long report never waits for them), the next
        ones wait and are then read as one group: one reader thread hop and one
        transaction (on PostgreSQL one BEGIN and one COMMIT round trip) for all, instead
        of one each. A quiet server reads each at once, as `read` does.

        Each `fn` gets its own answer: what it returned or raised. A database error in a
        group (a statement that failed, which on PostgreSQL aborts the transaction for
        the others) has every read of that group run again alone, with `read`."""
        if self._closed:
            raise DatabaseClosed("database is closed")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._together.append((fn, fut))
        if self._groups_reading < self._groups_at_once:
            self._read_group()
        return await fut

    def _read_group(self) -> None:
        group, self._together = self._together, []
        self._groups_reading += 1
        self.groups_read += 1

        def run(conn: Connection) -> list[tuple[Any, BaseException | None]]:
            answers: list[tuple[Any, BaseException | None]] = []
            for fn, _ in group:
                try:
                    answers.append((fn(conn), None))
                except sa.exc.DBAPIError:
                    raise  # the transaction may be lost for the others: each is read alone
                except Exception as e:
                    answers.append((None, e))
            return answers

        task = asyncio.ensure_future(self.read(run))
        task.add_done_callback(lambda t: self._group_read(t, group))

    def _group_read(self, task: asyncio.Future[list[tuple[Any, BaseException | None]]],
                    group: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]]) -> None:
        self._groups_reading -= 1
        if task.cancelled():
            for _, fut in group:
                fut.cancel()
        elif task.exception() is not None:
            for fn, fut in group:
                alone = asyncio.ensure_future(self.read(fn))
                alone.add_done_callback(functools.partial(_settle_from, fut))
        else:
            for (_, fut), (value, err) in zip(group, task.result(), strict=True):
                settle(fut, value, err)
        if self._together and self._groups_reading < self._groups_at_once:
            self._read_group()

    # --- writes -----------------------------------------------------------------------

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` in the writer's transaction; return once it is committed."""
        if self._closed:
            raise DatabaseClosed("database is closed")
        return await self._queue.submit(fn)

    def _run_writer(self, ready: asyncio.Future[None], loop: asyncio.AbstractEventLoop) -> None:
        assert self._write_engine is not None
        engine = self._write_engine
        try:
            self._migrate(engine)
        except BaseException as e:  # report to the opener, then stop
            loop.call_soon_threadsafe(settle, ready, None, e)
            return
        loop.call_soon_threadsafe(settle, ready, None, None)
        # One connection for the writer's life: after a lost connection (PostgreSQL
        # restarting) the failed group rolls it back and the next one reconnects.
        conn = engine.connect()
        try:
            for group in self._queue.groups():
                try:
                    self._run_group(conn, group)
                except Exception as e:  # a fault here must not leave every later write waiting
                    log.exception("writer: a group could not be run")
                    for job in group:
                        job.answer(None, e)
        finally:
            conn.close()

    def _run_group(self, conn: Connection, group: list[Job[Connection]]) -> None:
        results: list[tuple[Any, BaseException | None]] = []
        if len(group) == 1:  # nothing to keep apart: no savepoint (two round trips fewer)
            self._run_alone(conn, group[0])
            return
        try:
            with conn.begin():
                for job in group:
                    # Savepoints by hand: SQLAlchemy's nested-transaction objects cost more
                    # than the statements themselves at hundreds of writes per commit.
                    conn.exec_driver_sql("SAVEPOINT job")
                    try:
                        value = job.fn(conn)
                    except sa.exc.DBAPIError as e:
                        if e.connection_invalidated or not conn.in_transaction():
                            raise  # the connection is gone: the whole group fails with it
                        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT job")
                        conn.exec_driver_sql("RELEASE SAVEPOINT job")
                        results.append((None, e))
                    except Exception as e:
                        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT job")
                        conn.exec_driver_sql("RELEASE SAVEPOINT job")
                        results.append((None, e))
                    else:
                        conn.exec_driver_sql("RELEASE SAVEPOINT job")
                        results.append((value, None))
        except Exception as e:
            self._transaction_failed(e)
            results = [(None, e)] * len(group)
        else:
            _committed()  # before any caller is answered
        for job, (value, err) in zip(group, results, strict=True):
            job.answer(value, err)

    def _run_alone(self, conn: Connection, job: Job[Connection]) -> None:
        """A group of one: its own transaction, committed if it returns, rolled back
        (and its error answered) if it raises."""
        trans: sa.RootTransaction | None = None
        try:
            trans = conn.begin()
            try:
                value = job.fn(conn)
            except Exception as e:
                trans.rollback()
                _after_commit.hooks = []  # its hooks go with it
                job.answer(None, e)
                return
            trans.commit()
        except Exception as e:  # the transaction itself failed: begin, commit, rollback
            self._transaction_failed(e)
            with contextlib.suppress(Exception):  # a failed commit still needs its rollback
                if trans is not None:
                    trans.rollback()
                if conn.in_transaction():
                    conn.rollback()
            job.answer(None, e)
            return
        _committed()  # before the caller is answered
        job.answer(value, None)

    def _transaction_failed(self, e: BaseException) -> None:
        """Log a write transaction that failed whole (once, then counted); drop its hooks."""
        self._failures.event(f"{type(e).__name__}: {e}", "write transaction failed: %s", e,
                             level=logging.ERROR, exc_info=e)
        # (kept by the thread, not conn.info: on a connection lost with the database
        # reading that would reconnect)
        _after_commit.hooks = []

    def _migrate(self, engine: Engine) -> None:
        with engine.connect() as conn:
            with conn.begin():
                conn.execute(text(
                    "CREATE TABLE IF NOT EXISTS migrations "
                    "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
                ))
            for m in self._migrations:
                script = m.sqlite if self.dialect == "sqlite" else m.postgresql
                with conn.begin():
                    if self.dialect == "postgresql":
                        # several server processes may start at once: one migrates
                        conn.execute(text("SELECT pg_advisory_xact_lock(7305)"))
                    applied = conn.execute(text("SELECT 1 FROM migrations WHERE name = :name"),
                                           {"name": m.name}).first()
                    if applied is not None:
                        continue
                    for statement in split_sql(script):
                        conn.exec_driver_sql(statement)
                    conn.execute(
                        text("INSERT INTO migrations (name, applied_at) VALUES (:name, :at)"),
                        {"name": m.name, "at": datetime.now(UTC).isoformat()},
                    )
                log.info("applied migration %s", m.name)


_after_commit = threading.local()  # the hooks of the group the writer thread is running


def after_commit(conn: Connection, hook: Callable[[], None]) -> None:
    """Inside a write: call `hook()` (in the writer thread, cheap, never raising) once the
    write running on `conn` is committed, before its caller is answered; never if the
    commit fails. A write whose own savepoint was rolled back still runs its hooks: a
    hook may only say "look again", not "this happened"."""
    if not hasattr(_after_commit, "hooks"):
        _after_commit.hooks = []
    _after_commit.hooks.append(hook)


def _committed() -> None:
    """In the writer thread, after a commit: run the hooks its writes left, then forget them."""
    hooks, _after_commit.hooks = getattr(_after_commit, "hooks", []), []
    for hook in hooks:
        hook()


_compiled: dict[tuple[str, str], tuple[str, tuple[str, ...] | None]] = {}


def executemany(conn: Connection, statement: sa.TextClause, rows: Sequence[dict[str, Any]]) -> None:
    """`conn.execute(statement, rows)` without SQLAlchemy's work per row, for big batches
    of untyped binds: the statement is compiled once per engine kind and the rows go to
    the driver's executemany as they are (tuples in bind order for SQLite's `?`, the dicts
    themselves for psycopg's named style). Nothing is done for an empty `rows`."""
    if not rows:
        return
    key = (statement.text, conn.dialect.name)
    if key not in _compiled:
        compiled = statement.compile(dialect=conn.dialect)
        positions = compiled.positiontup
        _compiled[key] = (str(compiled), tuple(positions) if positions is not None else None)
    sql, order = _compiled[key]
    if order is None:
        conn.exec_driver_sql(sql, list(rows))
    else:
        conn.exec_driver_sql(sql, [tuple(row[k] for k in order) for row in rows])


def _settle_from(fut: asyncio.Future[Any], done: asyncio.Future[Any]) -> None:
    """Answer `fut` with what `done` ended with."""
    if done.cancelled():
        fut.cancel()
    else:
        settle(fut, None if done.exception() else done.result(), done.exception())


def _sqlite_setup(engine: Engine, synchronous: str, *, begin: str, query_only: bool) -> None:
    """Pragmas on every new connection, and transactions begun by us, not by pysqlite
    (whose own implicit BEGIN would break SAVEPOINTs and BEGIN IMMEDIATE)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        for pragma in ("journal_mode=WAL", f"synchronous={synchronous}", "foreign_keys=ON",
                       "busy_timeout=30000"):
            dbapi_conn.execute(f"PRAGMA {pragma}")
        if query_only:
            dbapi_conn.execute("PRAGMA query_only=ON")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        if query_only:
            # A reader's BEGIN (deferred) touches no file and cannot fail: sent straight to
            # the driver, it skips SQLAlchemy's statement machinery on every read.
            conn.connection.driver_connection.execute(begin)  # type: ignore[union-attr]
        else:
            conn.exec_driver_sql(begin)


def split_sql(script: str) -> list[str]:
    """Statements of a migration script: split at a `;` that ends a line (no statement in
    the migrations has one inside a string or a body)."""
    statements, current = [], []
    for line in script.splitlines():
        if line.lstrip().startswith("--"):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statement = "\n".join(current).strip().rstrip(";").strip()
            if statement:
                statements.append(statement)
            current = []
    rest = "\n".join(current).strip()
    if rest:
        statements.append(rest)
    return statements

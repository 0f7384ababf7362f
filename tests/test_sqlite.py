"""The shared SQLite layer: one writer folding concurrent writes into grouped commits,
a failing write rolled back alone, readers beside the writer, migrations applied once
and in order, and nothing left hanging at close."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from shared.sqlite import Database, DatabaseClosed, Migration

pytestmark = pytest.mark.asyncio
MIGRATIONS = [
    Migration("0001", "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL);"),
    Migration("0002", "ALTER TABLE t ADD COLUMN extra TEXT;\nCREATE INDEX t_v ON t(v);"),
]


async def test_concurrent_writes_all_commit(tmp_path: Path) -> None:
    async with Database(tmp_path / "db.sqlite3", MIGRATIONS) as db:
        await asyncio.gather(*(
            db.write(lambda c, i=i: c.execute("INSERT INTO t (k, v) VALUES (?, ?)", (i, str(i))))
            for i in range(500)
        ))
        assert await db.read(lambda c: c.execute("SELECT COUNT(*) FROM t").fetchone()[0]) == 500
    # Durable: a fresh connection sees every row.
    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 500
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_failing_write_rolls_back_alone(tmp_path: Path) -> None:
    async with Database(tmp_path / "db.sqlite3", MIGRATIONS) as db:
        def half_then_fail(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO t (k, v) VALUES (1, 'partial')")
            raise ValueError("refused")

        results = await asyncio.gather(
            db.write(lambda c: c.execute("INSERT INTO t (k, v) VALUES (0, 'before')")),
            db.write(half_then_fail),
            db.write(lambda c: c.execute("INSERT INTO t (k, v) VALUES (2, 'after')")),
            return_exceptions=True,
        )
        assert isinstance(results[1], ValueError)
        rows = await db.read(lambda c: [r[0] for r in c.execute("SELECT v FROM t ORDER BY k")])
        assert rows == ["before", "after"]


async def test_migrations_applied_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    async with Database(path, MIGRATIONS[:1]) as db:
        await db.write(lambda c: c.execute("INSERT INTO t (k, v) VALUES (1, 'x')"))
    async with Database(path, MIGRATIONS) as db:
        names = await db.read(
            lambda c: [r[0] for r in c.execute("SELECT name FROM migrations ORDER BY name")])
        assert names == ["0001", "0002"]
        cols = await db.read(lambda c: [r[1] for r in c.execute("PRAGMA table_info(t)")])
        assert cols == ["k", "v", "extra"]
        assert await db.read(lambda c: c.execute("SELECT v FROM t").fetchone()[0]) == "x"


async def test_broken_migration_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    bad = [*MIGRATIONS, Migration("0003", "CREATE TABLE u (a);\nTHIS IS NOT SQL;")]
    with pytest.raises(sqlite3.OperationalError):
        async with Database(path, bad):
            pass
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'u'").fetchone() is None
        assert [r[0] for r in conn.execute("SELECT name FROM migrations")] == ["0001", "0002"]


async def test_readers_cannot_write(tmp_path: Path) -> None:
    async with Database(tmp_path / "db.sqlite3", MIGRATIONS) as db:
        with pytest.raises(sqlite3.OperationalError):
            await db.read(lambda c: c.execute("INSERT INTO t (k, v) VALUES (1, 'x')"))


async def test_closed_database_refuses(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.sqlite3", MIGRATIONS)
    await db.async_open()
    await db.async_close()
    with pytest.raises(DatabaseClosed):
        await db.write(lambda c: None)

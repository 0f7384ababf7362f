"""A heartbeat writes only what changed in the terminal's cache.

Contract: after any sequence of heartbeats, `terminal_items` holds exactly the last
heartbeat's cache (an item named twice counts as its last mention; items no longer
named are gone), so the fleet view's `ready_items` and readiness follow every beat; a
heartbeat whose cache is what is stored writes no `terminal_items` row at all (only
the terminal's own row: last seen, address, the heartbeat), and one that changes a
single item writes that item alone. On SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, event, text

from server.appkeys import DB
from server.queries import fleet as fq
from shared.protocol import CachedItem, Heartbeat
from tests.conftest import Server
from tests.test_fleet import T1, beat, fleet, heartbeat, statements

pytestmark = pytest.mark.asyncio
A, B, C = "a" * 64, "b" * 64, "c" * 64


def _items(c: Connection) -> dict[str, tuple[str, int, int]]:
    return {r.sha256: (r.state, r.bytes_present, r.bytes_from_peers) for r in c.execute(
        text("SELECT sha256, state, bytes_present, bytes_from_peers FROM terminal_items "
             "WHERE terminal_id = :id"), {"id": T1})}


async def stored(server: Server) -> dict[str, tuple[str, int, int]]:
    return await server.running.app[DB].read(_items)


async def ready_items(server: Server) -> int:
    return int(next(t for t in (await fleet(server.http))["terminals"]
                    if t["id"] == T1)["ready_items"])


async def test_items_follow_every_heartbeat(server: Server) -> None:
    t1 = await server.as_terminal(T1)
    steps: list[tuple[list[dict[str, Any]], dict[str, tuple[str, int, int]]]] = [
        ([{"sha256": A, "state": "ready", "bytes_present": 5},
          {"sha256": B, "state": "downloading", "bytes_present": 10}],
         {A: ("ready", 5, 0), B: ("downloading", 10, 0)}),
        ([{"sha256": A, "state": "ready", "bytes_present": 5},  # the same again
          {"sha256": B, "state": "downloading", "bytes_present": 10}],
         {A: ("ready", 5, 0), B: ("downloading", 10, 0)}),
        ([{"sha256": A, "state": "ready", "bytes_present": 5},
          {"sha256": B, "state": "ready", "bytes_present": 20, "bytes_from_peers": 7},
          {"sha256": C, "state": "downloading", "bytes_present": 1}],
         {A: ("ready", 5, 0), B: ("ready", 20, 7), C: ("downloading", 1, 0)}),
        ([{"sha256": C, "state": "downloading", "bytes_present": 2},
          {"sha256": C, "state": "ready", "bytes_present": 3}],  # named twice: the last counts
         {C: ("ready", 3, 0)}),
        ([], {}),
    ]
    for cache, expected in steps:
        await beat(t1, T1, heartbeat(cache))
        assert await stored(server) == expected
        assert await ready_items(server) == sum(s == "ready" for s, _, _ in expected.values())


async def test_an_unchanged_cache_writes_no_item(server: Server) -> None:
    db = server.running.app[DB]
    cache = [CachedItem(sha256=s, state="ready", bytes_present=9) for s in (A, B, C)]

    def record(items: list[CachedItem]) -> Any:
        def run(c: Connection) -> list[str]:
            hb = Heartbeat(software_version="t", terminal_clock=datetime.now(UTC), disk_free=1,
                           disk_total=2, cache=items, outbox_backlog=0)
            with statements(c) as seen:
                fq.record_heartbeat(c, T1, hb, datetime.now(UTC), "127.0.0.1")
            return [s for s in seen if "terminal_items" in s and not s.startswith("SELECT")]
        return run

    assert len(await db.write(record(cache))) == 1  # one executemany of the three items
    assert await db.write(record(cache)) == []  # nothing changed: nothing written
    assert (await db.read(_items))[A] == ("ready", 9, 0)
    moved = [cache[0], CachedItem(sha256=B, state="ready", bytes_present=10), cache[2]]
    writes = await db.write(record(moved))
    assert len(writes) == 1 and writes[0].startswith("INSERT INTO terminal_items")
    assert (await db.read(_items))[B] == ("ready", 10, 0)
    writes = await db.write(record(moved[:2]))
    assert len(writes) == 1 and writes[0].startswith("DELETE FROM terminal_items")
    assert set(await db.read(_items)) == {A, B}


async def test_beats_arriving_together_are_written_together(server: Server) -> None:
    """Forty beats at once cost a handful of statements, not forty times the statements of
    one; a beat that cannot be stored (its terminal is gone) fails alone, the others of
    its batch are stored."""
    from server.appkeys import HEARTBEATS

    db, writer = server.running.app[DB], server.running.app[HEARTBEATS]
    ids = list(await db.read(lambda c: c.execute(text(
        "SELECT id FROM terminals ORDER BY id LIMIT 40")).scalars().all()))
    seen: list[str] = []

    def count(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = db._write_engine
    assert engine is not None
    event.listen(engine, "before_cursor_execute", count)
    try:
        now = datetime.now(UTC)

        def beat_of(tid: str, sha: str) -> fq.Beat:
            return fq.Beat(tid, Heartbeat(
                software_version="t", terminal_clock=now, disk_free=1, disk_total=2, outbox_backlog=0,
                cache=[CachedItem(sha256=sha, state="ready", bytes_present=1)]), now, "127.0.0.1")

        await asyncio.gather(*(writer.record(beat_of(tid, A)) for tid in ids))
        writes = [s for s in seen if "terminal" in s and "SAVEPOINT" not in s]
        assert len(writes) < 10, f"{len(writes)} statements for 40 beats"
        results = await asyncio.gather(
            *(writer.record(beat_of(tid, B)) for tid in ids),
            writer.record(beat_of("T-removed", C)), return_exceptions=True)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert all(r is None for r in results[:-1])
    assert isinstance(results[-1], sa.exc.IntegrityError)
    items = await db.read(lambda c: c.execute(text(
        "SELECT terminal_id FROM terminal_items WHERE sha256 = :b"), {"b": B}).scalars().all())
    assert sorted(items) == sorted(ids)  # every good beat stored, once

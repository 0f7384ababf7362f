"""PostgreSQL restarting under the server: terminals sending attendance get 503 with
Retry-After and a Chinese message while it is down (never a 500), every record they
send again afterwards is stored exactly once, and the same server process answers again
as soon as the database is back, with no restart of its own.

PostgreSQL run only (YUANJIAO_TEST_DATABASE=postgresql); SQLite lives in the process.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from server.appkeys import DB
from tests.conftest import Server, postgresql_cluster
from tests.test_attendance import record, roster

pytestmark = pytest.mark.asyncio
__all__ = ["roster"]  # the fixture, used by name

TERMINALS = ["T140121100001", "T140121100002", "T140121101001", "T140121101002"]
OUTAGE_S = 4.0  # long enough for every terminal to meet it several times


async def test_postgresql_restart_loses_nothing_and_needs_no_server_restart(
        server: Server, roster: list[str]) -> None:
    cluster = postgresql_cluster()
    if cluster is None:
        pytest.skip("PostgreSQL run only (YUANJIAO_TEST_DATABASE=postgresql)")
    known = await server.running.app[DB].read(lambda c: set(c.execute(
        text("SELECT id FROM terminals")).scalars()))
    terminals = [t for t in TERMINALS if t in known]
    assert len(terminals) >= 2
    clients = {t: await server.as_terminal(t) for t in terminals}
    acknowledged: dict[str, set[str]] = {t: set() for t in terminals}
    refusals: list[dict[str, Any]] = []
    statuses: set[int] = set()
    stop = asyncio.Event()

    async def terminal(t: str) -> None:
        start = datetime.now(UTC) - timedelta(days=1)
        n = 0
        while not stop.is_set():
            batch = [record(roster[:2], start + timedelta(minutes=n + i), watched=600,
                            record_id=f"{t}-{uuid.uuid4().hex}") for i in range(5)]
            n += 5
            while True:  # as a terminal does: the same records until acknowledged
                async with clients[t].post(f"/api/v1/terminals/{t}/attendance", json={
                    "terminal_clock": datetime.now(UTC).isoformat(), "records": batch,
                }) as r:
                    statuses.add(r.status)
                    if r.status == 200:
                        acknowledged[t].update((await r.json())["accepted"])
                        break
                    assert r.status == 503, await r.text()
                    refusals.append({"headers": dict(r.headers), "body": await r.json()})
                await asyncio.sleep(0.2)

    tasks = [asyncio.create_task(terminal(t)) for t in terminals]
    await asyncio.sleep(1.0)
    await asyncio.to_thread(cluster.stop, mode="immediate")
    await asyncio.sleep(OUTAGE_S)
    await asyncio.to_thread(cluster.restart)
    await asyncio.sleep(2.0)
    stop.set()
    await asyncio.gather(*tasks)

    assert statuses <= {200, 503} and refusals, "the outage was met"
    error = refusals[0]["body"]["error"]
    assert error["code"] == "database_unavailable" and "数据库" in error["message"]
    assert int(refusals[0]["headers"]["Retry-After"]) > 0
    stored = await server.running.app[DB].read(lambda c: c.execute(text(
        "SELECT terminal_id, record_id, COUNT(*) FROM attendance GROUP BY terminal_id, record_id"
    )).all())
    assert all(n == 1 for _, _, n in stored)
    by_terminal = {t: {rid for tid, rid, _ in stored if tid == t} for t in terminals}
    for t in terminals:
        assert acknowledged[t] and acknowledged[t] <= by_terminal[t]
    # and the console works again through the same process
    async with server.http.get("/api/v1/admin/reports/coverage") as r:
        assert r.status == 200
    async with aiohttp.ClientSession(server.url) as anon, anon.get("/api/v1/server") as r:
        assert r.status == 200

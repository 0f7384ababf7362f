"""Attendance batches are taken a bounded number at a time, so the server's memory stays flat.

With every terminal of the county sending at once, each decoded batch held in memory
until its commit made the server grow by tens of megabytes. At most
`attendance_concurrency` batches are decoded and stored at once; the others wait
unread, and every one of them is still stored exactly once. A limit below 1 is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from server.appkeys import ATTENDANCE_SLOTS, DB
from server.config import ServerConfig
from server.runner import RunningServer
from tests.conftest import Server, add_account, admin_session, seed_county, server_config
from tests.test_attendance import record

TERMINALS = ["T140121100001", "T140121100002", "T140121101001"]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with RunningServer(server_config(tmp_path, attendance_concurrency=2)) as running:
        await seed_county(running)
        token = await add_account(running)
        async with admin_session(running, token) as http:
            server = Server(running, http)
            try:
                yield server
            finally:
                await server.aclose()


async def _send(server: Server, terminal: str, n: int) -> int:
    http = await server.as_terminal(terminal)
    started = datetime.now(UTC) - timedelta(hours=3)
    batch = [record(["1"], started, seq=n * 100 + i, record_id=f"{terminal}-{n}-{i}") for i in range(50)]
    async with http.post(f"/api/v1/terminals/{terminal}/attendance", json={
        "terminal_clock": datetime.now(UTC).isoformat(), "records": batch,
    }) as r:
        assert r.status == 200, await r.text()
        return len((await r.json())["accepted"])


async def _stored(server: Server) -> int:
    db = server.running.app[DB]
    return int(await db.read(lambda c: c.execute(text("SELECT COUNT(*) FROM attendance")).scalar_one()))


@pytest.mark.asyncio
async def test_batches_past_the_limit_wait_and_all_are_stored(server: Server) -> None:
    for t in TERMINALS:
        await server.as_terminal(t)  # enrolled before the slots are taken
    slots = server.running.app[ATTENDANCE_SLOTS]
    async with slots, slots:  # both slots busy, as if two big batches were being stored
        waiting = asyncio.ensure_future(_send(server, TERMINALS[0], 0))
        done, _ = await asyncio.wait({waiting}, timeout=0.5)
        assert not done, "a batch was taken in while no slot was free"
    assert await asyncio.wait_for(waiting, 10) == 50

    # a burst from several terminals through two slots: every record acknowledged once
    counts = await asyncio.gather(*(_send(server, t, n) for t in TERMINALS for n in range(1, 5)))
    assert counts == [50] * 12
    assert await _stored(server) == 13 * 50


def test_a_limit_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="attendance_concurrency"):
        ServerConfig(data_dir=tmp_path, attendance_concurrency=0)

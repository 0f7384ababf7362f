"""Fleet: heartbeats record each terminal's state; the fleet view says who is online
(a heartbeat within a few intervals) and when each was last seen, and a clock more than
five minutes off as a problem (`clock_problem`, and a status that is not "ok"); readiness says, for
each upcoming session, which terminals hold every item verified and what the rest lack."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import Connection, event

from server.appkeys import DB
from server.queries import fleet as fq
from tests import tusclient
from tests.conftest import Server, seed_county, serve, server_config, terminal_session, terminal_token

pytestmark = pytest.mark.asyncio
T1, T2 = "T140121100001", "T140121100002"


def heartbeat(cache: list[dict[str, Any]], clock: datetime | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "software_version": "0.1.0", "terminal_clock": (clock or datetime.now(UTC)).isoformat(),
        "disk_free": 10 << 30, "disk_total": 32 << 30, "cache": cache, "outbox_backlog": 3,
        "catalog_version": 4, **extra,
    }


async def beat(http: aiohttp.ClientSession, terminal: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(f"/api/v1/terminals/{terminal}/heartbeat", json=body) as r:
        assert r.status == 200, await r.text()
        return dict(await r.json())


async def fleet(http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.get("/api/v1/admin/fleet") as r:
        return dict(await r.json())


async def test_heartbeat_marks_online(server: Server) -> None:
    before = await fleet(server.http)
    assert before["total"] == 211 and before["online"] == 0
    skewed = datetime.now(UTC) - timedelta(hours=9)  # a clock reset by a power cut
    t1 = await server.as_terminal(T1)
    ack = await beat(t1, T1, heartbeat([], clock=skewed, status="downloading 2 items",
                                       playback={"sha256": "b" * 64, "state": "playing",
                                                 "position_seconds": 12.5}))
    assert ack["heartbeat_interval_seconds"] == server.config.heartbeat_interval
    assert abs(datetime.fromisoformat(ack["server_time"]) - datetime.now(UTC)) < timedelta(seconds=5)
    after = await fleet(server.http)
    assert after["online"] == 1
    me = next(t for t in after["terminals"] if t["id"] == T1)
    assert me["online"] is True and me["last_seen"] is not None
    assert me["software_version"] == "0.1.0" and me["outbox_backlog"] == 3
    assert me["disk_free"] == 10 << 30 and me["status"] == "downloading 2 items"
    assert me["playing"] == "b" * 64
    assert -9 * 3600 - 10 < me["clock_skew_seconds"] < -9 * 3600 + 10
    assert me["last_address"] == "127.0.0.1"
    assert me["clock_problem"] is True


async def test_a_beat_s_cache_is_kept_by_item_not_in_the_stored_beat(server: Server) -> None:
    """The cache of a beat goes to terminal_items; the beat kept on the terminal's row
    leaves it out (60 items are most of a beat's bytes, written every minute)."""
    items = [{"sha256": f"{n:064x}", "state": "ready", "bytes_present": 1000 + n} for n in range(60)]
    await beat(await server.as_terminal(T1), T1, heartbeat(items, peer_port=8780))

    def stored(c: Connection) -> tuple[str, int]:
        from sqlalchemy import text
        raw = c.execute(text("SELECT heartbeat FROM terminals WHERE id = :id"), {"id": T1}).scalar_one()
        n = c.execute(text("SELECT COUNT(*) FROM terminal_items WHERE terminal_id = :id"),
                      {"id": T1}).scalar_one()
        return str(raw), int(n)

    raw, held = await server.running.app[DB].read(stored)
    assert held == 60 and '"cache":[]' in raw and '"peer_port":8780' in raw and len(raw) < 1000
    me = next(t for t in (await fleet(server.http))["terminals"] if t["id"] == T1)
    assert me["ready_items"] == 60 and me["disk_free"] == 10 << 30


async def test_clock_skew_beyond_five_minutes_is_a_problem(server: Server) -> None:
    t1 = await server.as_terminal(T1)
    await beat(t1, T1, heartbeat([], clock=datetime.now(UTC) + timedelta(minutes=4)))
    me = next(t for t in (await fleet(server.http))["terminals"] if t["id"] == T1)
    assert me["clock_problem"] is False and me["status"] == "ok"
    await beat(t1, T1, heartbeat([], clock=datetime.now(UTC) + timedelta(days=5 * 365)))
    me = next(t for t in (await fleet(server.http))["terminals"] if t["id"] == T1)
    assert me["clock_problem"] is True and me["status"] != "ok"
    assert "clock off by +157" in me["status"]


async def test_silent_terminal_goes_offline(tmp_path: Path) -> None:
    config = server_config(tmp_path, heartbeat_interval=0.05, online_missed_heartbeats=1)
    async with serve(config) as (running, http):
        await seed_county(running)
        async with terminal_session(running, await terminal_token(http, T1)) as t1:
            await beat(t1, T1, heartbeat([]))
        # 0.05 s x 1 later, with no heartbeat, the terminal counts as offline.
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while (await fleet(http))["online"] and datetime.now(UTC) < deadline:
            await asyncio.sleep(0.05)
        status = await fleet(http)
        assert status["online"] == 0
        me = next(t for t in status["terminals"] if t["id"] == T1)
        assert me["last_seen"] is not None and me["online"] is False


@contextmanager
def statements(conn: Connection) -> Iterator[list[str]]:
    """The SQL statements run on `conn` inside the block, whitespace folded."""
    seen: list[str] = []

    def before(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(conn, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(conn, "before_cursor_execute", before)


async def test_readiness(server: Server, clip: Path, clip2: Path) -> None:
    shas, ids = [], []
    for c in (clip, clip2):
        r = await tusclient.upload(server.http, c.read_bytes(), title=c.stem)
        shas.append(r.headers["Yuanjiao-Sha256"])
        ids.append(r.headers["Yuanjiao-Content-Id"])
    starts = datetime.now(UTC) + timedelta(days=1)
    async with server.http.post("/api/v1/admin/sessions", json={
        "title": "冬训", "starts_at": starts.isoformat(), "content_ids": ids,
        "village_codes": ["140121100001", "140121100002"]}) as r:
        assert r.status == 201
    ready = [{"sha256": s, "state": "ready", "bytes_present": 1} for s in shas]
    await beat(await server.as_terminal(T1), T1, heartbeat(ready))
    await beat(await server.as_terminal(T2), T2, heartbeat([{"sha256": shas[0], "state": "ready"},
                                           {"sha256": shas[1], "state": "downloading",
                                            "bytes_present": 10}]))
    async with server.http.get("/api/v1/admin/readiness") as r:
        sessions = await r.json()
    assert len(sessions) == 1
    s = sessions[0]
    assert (s["ready"], s["total"], s["items"]) == (1, 2, shas)
    by_id = {t["terminal_id"]: t for t in s["terminals"]}
    assert by_id[T1]["ready"] is True and by_id[T1]["missing"] == []
    assert by_id[T2]["ready"] is False and by_id[T2]["missing"] == [shas[1]]

    # More sessions cost no more statements: four, whatever their number and terminals'.
    for n, (village, content) in enumerate((("140121100002", ids[0]), ("140121100001", ids[1]))):
        async with server.http.post("/api/v1/admin/sessions", json={
                "title": f"冬训{n + 2}", "starts_at": (starts + timedelta(hours=n + 1)).isoformat(),
                "content_ids": [content], "village_codes": [village]}) as r:
            assert r.status == 201
    async with server.http.get("/api/v1/admin/readiness") as r:
        later = {s["title"]: s for s in await r.json()}
    assert (later["冬训2"]["ready"], later["冬训2"]["total"]) == (1, 1)  # T2 holds shas[0]
    assert later["冬训3"]["terminals"][0]["terminal_id"] == T1 and later["冬训3"]["ready"] == 1

    def count(c: Connection) -> int:
        with statements(c) as seen:
            fq.sessions_readiness(c, datetime.now(UTC) - timedelta(hours=12))
        return len(seen)

    assert await server.running.app[DB].read(count) == 4


async def test_bad_heartbeat(server: Server) -> None:
    t1 = await server.as_terminal(T1)
    async with t1.post(f"/api/v1/terminals/{T1}/heartbeat",
                                json={"software_version": "x"}) as r:
        assert r.status == 422
        err = (await r.json())["error"]
        assert "terminal_clock" in err["message"] and "terminal_clock" in err["message_en"]
    async with t1.post(f"/api/v1/terminals/{T1}/heartbeat",
                       json=heartbeat([{"sha256": "nope", "state": "ready"}])) as r:
        assert r.status == 422
    async with t1.post("/api/v1/terminals/T000/heartbeat", json=heartbeat([])) as r:
        assert r.status == 403  # a terminal speaks only for itself

"""Attendance ingest and the reports built on it.

Ingest is idempotent on (terminal, record id): a batch sent again stores nothing twice,
a known id with a different payload gets 422 and nothing of that batch is stored, and
the answer lists the ids now safely held. A record arriving weeks late counts in the
period it happened. Reports: coverage per village/township/county, a member's learning
record, and per terminal and month the county's rule (2 sessions, 20 hours), as CSV too.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import COUNTY, Server

pytestmark = pytest.mark.asyncio
T1, V1 = "T140121100001", "140121100001"
SHA = "a" * 64


def record(members: list[str], started: datetime, watched: float = 600.0, seq: int = 1,
           record_id: str | None = None) -> dict[str, Any]:
    return {
        "record_id": record_id or uuid.uuid4().hex, "seq": seq,
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(seconds=watched + 60)).isoformat(),
        "items": [{"sha256": SHA, "watched_seconds": watched}],
        "attendees": members, "title": "冬训",
    }


async def send(server: Server, records: list[dict[str, Any]], terminal: str = T1, *,
               speaker: str | None = None) -> tuple[int, dict[str, Any]]:
    """Post a batch to `terminal`'s path, as `speaker` (by default the terminal itself)."""
    http = await server.as_terminal(speaker or terminal)
    async with http.post(f"/api/v1/terminals/{terminal}/attendance", json={
        "terminal_clock": datetime.now(UTC).isoformat(), "records": records,
    }) as r:
        return r.status, await r.json()


@pytest.fixture
async def roster(server: Server) -> list[str]:
    body = (COUNTY / "members-sample-gbk.csv").read_bytes()
    async with server.http.post("/api/v1/admin/members/import", data=body) as r:
        assert r.status == 200
    async with (await server.as_terminal(T1)).get(f"/api/v1/terminals/{T1}/roster") as r:
        return [m["member_no"] for m in (await r.json())["members"]]


async def test_batch_sent_again_stores_nothing_twice(server: Server, roster: list[str]) -> None:
    now = datetime.now(UTC) - timedelta(hours=2)
    batch = [record(roster[:3], now, seq=i) for i in range(1, 6)]
    status, ack = await send(server, batch)
    assert status == 200
    assert ack == {"accepted": [r["record_id"] for r in batch], "duplicates": 0}
    status, again = await send(server, list(reversed(batch)))
    assert status == 200 and again["duplicates"] == 5
    assert set(again["accepted"]) == {r["record_id"] for r in batch}
    async with server.http.get(f"/api/v1/admin/reports/members/{roster[0]}") as r:
        learning = await r.json()
    assert learning["sessions"] == 5
    assert learning["watched_seconds"] == 3000


async def test_changed_payload_is_422_and_batch_not_stored(server: Server, roster: list[str]) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    first = record(roster[:1], now)
    assert (await send(server, [first]))[0] == 200
    changed = {**first, "attendees": roster[:2]}
    fresh = record(roster[2:3], now)
    status, body = await send(server, [fresh, changed])
    assert status == 422
    assert body["error"]["code"] == "record_conflict"
    assert body["error"]["details"]["record_ids"] == [first["record_id"]]
    async with server.http.get(f"/api/v1/admin/reports/members/{roster[2]}") as r:
        assert (await r.json())["sessions"] == 0  # the fresh record was not stored either


async def test_one_id_twice_in_a_batch(server: Server, roster: list[str]) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    rec = record(roster[:1], now)
    status, ack = await send(server, [rec, rec])  # the same record twice: stored once
    assert status == 200 and ack["duplicates"] == 1
    other = record(roster[:2], now)
    clash = {**other, "attendees": roster[:3]}
    status, body = await send(server, [other, clash])
    assert status == 422 and body["error"]["details"]["record_ids"] == [other["record_id"]]
    async with server.http.get(f"/api/v1/admin/reports/members/{roster[1]}") as r:
        assert (await r.json())["sessions"] == 0


async def test_same_record_id_on_two_terminals_are_two_records(server: Server, roster: list[str]) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    rec = record(roster[:1], now, record_id="shared-id")
    assert (await send(server, [rec], T1))[0] == 200
    assert (await send(server, [rec], "T140121100002"))[0] == 200
    # the member is not on the second terminal's village roster: held until confirmed
    async with server.http.get(f"/api/v1/admin/reports/members/{roster[0]}") as r:
        assert (await r.json())["sessions"] == 1
    url = "/api/v1/admin/attendance/flagged/T140121100002/shared-id/confirm"
    async with server.http.post(url, json={"started_at": None}) as r:
        assert r.status == 204
    async with server.http.get(f"/api/v1/admin/reports/members/{roster[0]}") as r:
        assert (await r.json())["sessions"] == 2


@pytest.mark.parametrize("mutate", [
    lambda r: r.update(started_at="yesterday"),
    lambda r: r.update(started_at="2026-01-01T00:00:00"),
    lambda r: r["items"][0].update(watched_seconds=-5),
    lambda r: r["items"][0].update(sha256="xyz"),
    lambda r: r.pop("record_id"),
])
async def test_invalid_records_rejected(server: Server, mutate: Any) -> None:
    rec = record(["1"], datetime.now(UTC) - timedelta(hours=1))
    mutate(rec)
    status, body = await send(server, [rec])
    assert status == 422
    assert body["error"]["message"]


async def test_malformed_and_oversized_json(server: Server) -> None:
    url = f"/api/v1/terminals/{T1}/attendance"
    http = await server.as_terminal(T1)
    json_type = {"Content-Type": "application/json"}
    async with http.post(url, data=b"{not json", headers=json_type) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"
    async with http.post(url, data=b"x" * (5 << 20), headers=json_type) as r:
        assert r.status == 413 and (await r.json())["error"]["code"] == "too_large"
    async with http.post(url, data=b"{}", headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 415
    status, _ = await send(server, [])
    assert status == 422
    status, _ = await send(server, [record(["1"], datetime.now(UTC))], terminal="T404",
                           speaker=T1)
    assert status == 403  # a terminal speaks only for itself


async def test_late_record_counts_in_its_period(server: Server, roster: list[str]) -> None:
    # A session held on 15 March, delivered now (months later), counts in March.
    held = datetime(2026, 3, 15, 11, 0, tzinfo=UTC)
    assert (await send(server, [record(roster[:4], held, watched=3600)]))[0] == 200
    async with server.http.get("/api/v1/admin/reports/coverage?from=2026-03-01&to=2026-03-31") as r:
        march = {row["code"]: row for row in (await r.json())["rows"] if row["level"] == "village"}
    assert march[V1]["trained"] == 4
    assert march[V1]["members"] == len(roster)
    async with server.http.get("/api/v1/admin/reports/coverage?from=2026-04-01&to=2026-04-30") as r:
        april = {row["code"]: row for row in (await r.json())["rows"] if row["level"] == "village"}
    assert april[V1]["trained"] == 0


async def test_coverage_rolls_up_and_exports_csv(server: Server, roster: list[str]) -> None:
    day = datetime(2026, 10, 10, 2, 0, tzinfo=UTC)
    await send(server, [record(roster[:2], day), record(roster[1:3], day + timedelta(days=1))])
    # Under the counting threshold: attended but not counted as trained.
    await send(server, [record(roster[5:6], day, watched=0.5)])
    async with server.http.get("/api/v1/admin/reports/coverage?from=2026-10-01&to=2026-10-31") as r:
        rows = (await r.json())["rows"]
    county = rows[0]
    unit = next(x for x in rows if x["level"] == "unit" and x["code"] == "140121100")
    village = next(x for x in rows if x["level"] == "village" and x["code"] == V1)
    assert county["level"] == "county" and county["trained"] == 3
    assert unit["trained"] == 3 and village["trained"] == 3
    assert village["rate"] == round(3 / len(roster), 4)
    async with server.http.get(
            "/api/v1/admin/reports/coverage?from=2026-10-01&to=2026-10-31&format=csv") as r:
        assert r.content_type == "text/csv"
        text = (await r.read()).decode("utf-8")
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert table[0] == ["层级", "代码", "名称", "党员数", "参学人数", "受训率"]
    assert table[1][0] == "县" and table[1][4] == "3"


async def test_bad_period_is_refused(server: Server) -> None:
    # Not a date: 400; two dates the document allows but in the wrong order: 422.
    for q, status in [("from=2026-13-01", 400), ("from=2026-05-01&to=2026-04-01", 422),
                      ("from=yesterday", 400), ("to=", 400), ("format=pdf", 400)]:
        async with server.http.get(f"/api/v1/admin/reports/coverage?{q}") as r:
            assert r.status == status, q


async def test_member_record_and_csv(server: Server, roster: list[str]) -> None:
    t = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    await send(server, [record(roster[:1], t, watched=1800), record(roster[:1], t + timedelta(days=3),
                                                                    watched=900)])
    async with server.http.get(f"/api/v1/admin/reports/members/{roster[0]}") as r:
        rec = await r.json()
    assert rec["sessions"] == 2 and rec["counted_sessions"] == 2
    assert rec["watched_seconds"] == 2700
    assert rec["village_code"] == V1
    assert [e["started_at"][:10] for e in rec["entries"]] == ["2026-11-01", "2026-11-04"]
    async with server.http.get(f"/api/v1/admin/reports/members/{roster[0]}?format=csv") as r:
        table = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    assert len(table) == 3 and table[1][2] == "2026-11-01 20:00"  # county local time
    async with server.http.get("/api/v1/admin/reports/members/nobody") as r:
        assert r.status == 404


async def test_terminal_months_against_the_rule(server: Server, roster: list[str]) -> None:
    # T1 holds 2 sessions of 10.5 hours in October (meets the rule), one short one in November.
    oct1 = datetime(2026, 10, 5, 1, 0, tzinfo=UTC)
    await send(server, [record(roster[:2], oct1, watched=37800),
                        record(roster[:3], oct1 + timedelta(days=7), watched=37800),
                        record(roster[:1], datetime(2026, 11, 2, 1, 0, tzinfo=UTC), watched=3600)])
    # 16:30 UTC on 31 October is 00:30 on 1 November in the county: it counts in November.
    await send(server, [record(roster[:1], datetime(2026, 10, 31, 16, 30, tzinfo=UTC), watched=60)])
    async with server.http.get("/api/v1/admin/reports/terminals?from=2026-10-01&to=2026-11-30") as r:
        report = await r.json()
    assert (report["rule_sessions"], report["rule_hours"]) == (2, 20.0)
    mine = {row["month"]: row for row in report["rows"] if row["terminal_id"] == T1}
    assert mine["2026-10"]["sessions"] == 2 and mine["2026-10"]["hours"] == 21.0
    assert mine["2026-10"]["meets_rule"] is True and mine["2026-10"]["attendances"] == 5
    assert mine["2026-11"]["sessions"] == 2 and mine["2026-11"]["meets_rule"] is False
    idle = [row for row in report["rows"] if row["terminal_id"] == "T140121100002"]
    assert [(r["month"], r["sessions"], r["meets_rule"]) for r in idle] == [
        ("2026-10", 0, False), ("2026-11", 0, False)]
    assert len(report["rows"]) == 211 * 2
    async with server.http.get(
            "/api/v1/admin/reports/terminals?from=2026-10-01&to=2026-10-31&format=csv") as r:
        table = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    assert table[0][0] == "站点" and len(table) == 212

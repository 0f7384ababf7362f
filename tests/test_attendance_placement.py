"""The server places every attendance record in time, flags what it cannot place, and
never refuses or drops a record for its times.

* A record from an older terminal whose batch says `terminal_clock` = 2000-01-01 is
  moved by the batch's clock offset and counts in the month it really happened.
* A record whose wall-clock end is before its start, or that ends after it was
  received, is stored flagged: listed by `GET /admin/attendance/flagged` with its
  reasons, counted nowhere, and counted in the confirmed period once a person confirms
  it (`POST .../confirm`; 404 for an unknown record, 422 for an impossible time).
* Attendees not on the village roster flag the record and count only after
  confirmation; the others count at once.
* A session with nothing watched counts in no coverage figure, no learning record and
  no session count.
* A batch over 1000 records and a record over 1000 attendees are refused with 422 and a
  message; nothing of that batch is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import COUNTY, Server
from tests.test_attendance import T1, V1, record

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def people(server: Server) -> list[str]:
    """The member numbers of T1's village, after the sample roster is imported."""
    body = (COUNTY / "members-sample-gbk.csv").read_bytes()
    async with server.http.post("/api/v1/admin/members/import", data=body) as r:
        assert r.status == 200
    async with (await server.as_terminal(T1)).get(f"/api/v1/terminals/{T1}/roster") as r:
        return [m["member_no"] for m in (await r.json())["members"]]


async def send_at(server: Server, records: list[dict[str, Any]], clock: datetime,
                  **extra: Any) -> tuple[int, dict[str, Any]]:
    http = await server.as_terminal(T1)
    async with http.post(f"/api/v1/terminals/{T1}/attendance", json={
        "terminal_clock": clock.isoformat(), "records": records, **extra,
    }) as r:
        return r.status, await r.json()


async def flagged(server: Server) -> dict[str, dict[str, Any]]:
    async with server.http.get("/api/v1/admin/attendance/flagged") as r:
        assert r.status == 200
        return {f["record_id"]: f for f in (await r.json())["records"]}


async def trained(server: Server, month: str) -> int:
    start = datetime.fromisoformat(month + "-01")
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    async with server.http.get(f"/api/v1/admin/reports/coverage?from={start.date()}&to={end.date()}") as r:
        rows = (await r.json())["rows"]
    return int(next(x["trained"] for x in rows if x["level"] == "village" and x["code"] == V1))


async def sessions_of(server: Server, member_no: str) -> int:
    async with server.http.get(f"/api/v1/admin/reports/members/{member_no}") as r:
        return int((await r.json())["sessions"])


async def confirm(server: Server, record_id: str, started_at: str | None,
                  terminal_id: str = T1) -> tuple[int, Any]:
    url = f"/api/v1/admin/attendance/flagged/{terminal_id}/{record_id}/confirm"
    async with server.http.post(url, json={"started_at": started_at}) as r:
        return r.status, (await r.json() if r.status != 204 else None)


async def test_clock_reset_to_2000_lands_in_the_real_month(server: Server, people: list[str]) -> None:
    # An old terminal (no clock fields) whose clock went back to 2000-01-01 at a power cut
    # held a one-hour session 90 minutes ago and sends it now.
    now = datetime.now(UTC)
    box = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(hours=2)
    rec = record(people[:3], box - timedelta(minutes=90), watched=3600)
    status, ack = await send_at(server, [rec], box)
    assert status == 200 and ack["accepted"] == [rec["record_id"]]
    assert await trained(server, "2000-01") == 0
    month = (now - timedelta(minutes=90) + timedelta(hours=8)).strftime("%Y-%m")
    assert await trained(server, month) == 3
    async with server.http.get(f"/api/v1/admin/reports/members/{people[0]}") as r:
        entry = (await r.json())["entries"][0]
    placed = datetime.fromisoformat(entry["started_at"])
    assert abs(placed - (now - timedelta(minutes=90))) < timedelta(seconds=30)
    assert rec["record_id"] not in await flagged(server)


async def test_backwards_record_is_flagged_then_confirmed(server: Server, people: list[str]) -> None:
    now = datetime.now(UTC)
    rec = record(people[:2], now - timedelta(hours=3), watched=1800)
    rec["ended_at"] = (now - timedelta(hours=5)).isoformat()  # an NTP step in the session
    status, ack = await send_at(server, [rec], now)
    assert status == 200 and ack["accepted"] == [rec["record_id"]]
    held = (await flagged(server))[rec["record_id"]]
    assert held["reasons"] == ["ends_before_start"]
    assert held["village_code"] == V1 and held["village_name"]
    assert held["watched_seconds"] == 1800 and held["attendees"] == 2
    assert datetime.fromisoformat(held["reported_started_at"]) == now - timedelta(hours=3)
    assert await sessions_of(server, people[0]) == 0  # not counted before confirmation

    assert (await confirm(server, "no-such-record", None))[0] == 404
    status, body = await confirm(server, rec["record_id"], "yesterday")
    assert status == 422 and body["error"]["message"]
    status, body = await confirm(server, rec["record_id"], (now + timedelta(days=1)).isoformat())
    assert status == 422 and "received" in body["error"]["message_en"]

    real = datetime(2026, 9, 15, 1, 0, tzinfo=UTC)
    assert (await confirm(server, rec["record_id"], real.isoformat()))[0] == 204
    assert rec["record_id"] not in await flagged(server)
    assert await trained(server, "2026-09") == 2
    async with server.http.get(f"/api/v1/admin/reports/members/{people[0]}") as r:
        learning = await r.json()
    assert learning["sessions"] == 1
    assert learning["entries"][0]["started_at"].startswith("2026-09-15T01:00:00")
    # sent again after a lost acknowledgement: the same record, counted once
    status, again = await send_at(server, [rec], now)
    assert status == 200 and again["duplicates"] == 1
    assert await sessions_of(server, people[0]) == 1


async def test_record_ending_after_receipt_is_flagged(server: Server, people: list[str]) -> None:
    now = datetime.now(UTC)
    # a confirmed-clock record that nevertheless ends an hour in the future
    rec = {**record(people[:1], now + timedelta(minutes=30), watched=1200), "clock_confirmed": True}
    assert (await send_at(server, [rec], now))[0] == 200
    assert (await flagged(server))[rec["record_id"]]["reasons"] == ["ends_after_received"]
    assert await sessions_of(server, people[0]) == 0
    # accepting the suggestion is impossible (it ends after receipt); a real time is not
    assert (await confirm(server, rec["record_id"], None))[0] == 422
    assert (await confirm(server, rec["record_id"], (now - timedelta(hours=1)).isoformat()))[0] == 204
    assert await sessions_of(server, people[0]) == 1


async def test_unplaceable_record_is_flagged_with_a_suggestion(server: Server, people: list[str]) -> None:
    # A new terminal's record from an earlier boot it never synced in: nothing to place it by.
    now = datetime.now(UTC)
    box_now = now + timedelta(days=5 * 365)
    rec = {**record(people[:1], box_now - timedelta(days=20), watched=600),
           "clock_confirmed": False, "boot_id": "earlier-boot", "started_monotonic": 50.0,
           "ended_monotonic": 710.0}
    status, _ = await send_at(server, [rec], box_now, boot_id="this-boot", monotonic=900.0)
    assert status == 200
    held = (await flagged(server))[rec["record_id"]]
    assert held["reasons"] == ["clock_unconfirmed"]
    suggested = datetime.fromisoformat(held["started_at"])
    assert abs(suggested - (now - timedelta(days=20))) < timedelta(minutes=1)  # batch offset
    assert datetime.fromisoformat(held["ended_at"]) - suggested == timedelta(seconds=660)
    assert await sessions_of(server, people[0]) == 0
    assert (await confirm(server, rec["record_id"], None))[0] == 204
    assert await sessions_of(server, people[0]) == 1


async def test_attendees_off_the_roster_are_flagged(server: Server, people: list[str]) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    rec = record([people[0], "999999"], now)
    assert (await send_at(server, [rec], datetime.now(UTC)))[0] == 200
    assert (await flagged(server))[rec["record_id"]]["reasons"] == ["not_on_roster"]
    assert await sessions_of(server, people[0]) == 1  # the member on the roster counts at once
    async with server.http.get("/api/v1/admin/reports/terminals") as r:
        mine = [x for x in (await r.json())["rows"] if x["terminal_id"] == T1 and x["sessions"]]
    assert [x["attendances"] for x in mine] == [1]
    assert (await confirm(server, rec["record_id"], None))[0] == 204
    async with server.http.get("/api/v1/admin/reports/terminals") as r:
        mine = [x for x in (await r.json())["rows"] if x["terminal_id"] == T1 and x["sessions"]]
    assert [x["attendances"] for x in mine] == [2]


async def test_nothing_watched_counts_nowhere(server: Server, people: list[str]) -> None:
    when = datetime(2026, 8, 10, 2, 0, tzinfo=UTC)
    empty = record(people[:5], when, watched=0)
    never = {**record(people[:5], when + timedelta(hours=2)), "items": []}
    assert (await send_at(server, [empty, never], datetime.now(UTC)))[0] == 200
    assert await trained(server, "2026-08") == 0
    assert await sessions_of(server, people[0]) == 0
    async with server.http.get("/api/v1/admin/reports/terminals?from=2026-08-01&to=2026-08-31") as r:
        mine = next(x for x in (await r.json())["rows"] if x["terminal_id"] == T1)
    assert mine["sessions"] == 0 and mine["attendances"] == 0


async def test_batch_and_attendee_limits(server: Server, people: list[str]) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    many = [record(people[:1], now, seq=i) for i in range(1001)]
    status, body = await send_at(server, many, datetime.now(UTC))
    assert status == 422 and "1000" in body["error"]["message"] and "1000" in body["error"]["message_en"]
    crowd = record([str(n) for n in range(1, 1002)], now)
    ok = record(people[:1], now)
    status, body = await send_at(server, [ok, crowd], datetime.now(UTC))
    assert status == 422 and "1000" in body["error"]["message"] and "1000" in body["error"]["message_en"]
    assert await sessions_of(server, people[0]) == 0  # nothing of that batch was stored


async def test_flagged_listing_is_empty_when_all_is_well(server: Server, people: list[str]) -> None:
    rec = {**record(people[:1], datetime.now(UTC) - timedelta(hours=1)), "clock_confirmed": True,
           "boot_id": "b", "started_monotonic": 10.0, "ended_monotonic": 670.0}
    # this boot's anchor: received now at monotonic 4000, so the record began 3990 s ago
    status, _ = await send_at(server, [rec], datetime.now(UTC), boot_id="b", monotonic=4000.0)
    assert status == 200
    assert await flagged(server) == {}
    async with server.http.get(f"/api/v1/admin/reports/members/{people[0]}") as r:
        entry = (await r.json())["entries"][0]
    began = datetime.fromisoformat(entry["started_at"])
    assert abs(datetime.now(UTC) - timedelta(seconds=3990) - began) < timedelta(seconds=30)


async def test_impossible_times_are_stored_flagged_never_a_5xx(server: Server, people: list[str]) -> None:
    far = {**record(people[:1], datetime(9999, 12, 31, 20, tzinfo=UTC), watched=60),
           "ended_at": "9999-12-31T23:59:59Z", "boot_id": "x", "started_monotonic": 1e10,
           "ended_monotonic": 0.0}
    status, ack = await send_at(server, [far], datetime(1, 1, 2, tzinfo=UTC), boot_id="x", monotonic=0.0)
    assert status == 200 and ack["accepted"] == [far["record_id"]]
    assert "clock_unconfirmed" in (await flagged(server))[far["record_id"]]["reasons"]
    status, body = await confirm(server, far["record_id"], "9999-12-31T23:59:00Z")
    assert status == 422 and body["error"]["code"] == "bad_time"


async def test_a_clock_a_few_minutes_fast_is_not_a_problem(server: Server, people: list[str]) -> None:
    # an older terminal, four minutes fast, sends a session the moment it ends
    fast = datetime.now(UTC) + timedelta(minutes=4)
    rec = record(people[:1], fast - timedelta(seconds=660), watched=600)
    assert (await send_at(server, [rec], fast))[0] == 200
    assert await flagged(server) == {}
    assert await sessions_of(server, people[0]) == 1

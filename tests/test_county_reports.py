"""A county's account is kept inside its county by the reports, the member roster and
the flagged attendance; the province's account still sees every county.

Two counties hold members and attendance: HOME (the sample county) and OTHER
(tests/county_scope.py). For HOME's account:

* the coverage report (JSON and CSV) lists HOME's villages and townships only, and its
  total row is HOME's: its members and trained members, with HOME's code;
* the member search finds HOME's members only; OTHER's member's learning record is a
  404 with the same code as a member that does not exist (JSON and CSV);
* the terminal months report (JSON and CSV) lists HOME's terminals only; OTHER's
  terminal's attendance records are a 404 `unknown_terminal`, as for no terminal;
* the flagged attendance lists the records of HOME's terminals only; confirming one of
  OTHER's is a 404 `unknown_record`, as for no record, and leaves it unconfirmed;
* a roster import refuses, row by row, a row naming OTHER's village exactly as a row
  naming a village that does not exist, and a row whose number is OTHER's member;
  nothing of those rows is stored (a dry run says the same), the other rows are.

On SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tests.conftest import Server
from tests.county_scope import (
    HOME,
    OTHER,
    OTHER_TERMINALS,
    OTHER_UNIT,
    OTHER_VILLAGES,
    add_other_county,
    county_admin,
)
from tests.test_attendance import record, send

pytestmark = pytest.mark.asyncio

HOME_VILLAGE, HOME_TERMINAL = f"{HOME}100001", f"T{HOME}100001"
OTHER_VILLAGE, OTHER_TERMINAL = OTHER_VILLAGES[0], OTHER_TERMINALS[0]
HOME_MEMBERS = ("9001", "9002")
OTHER_MEMBER = "9101"
HEADER = "序号,姓名,性别,所在村（社区）代码\n"


def _table(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _period() -> str:
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    return f"from={today - timedelta(days=3)}&to={today}"


@pytest.fixture
async def two_counties(server: Server) -> dict[str, str]:
    """Members in both counties (imported by the province's account), a counted record
    and a flagged one (an attendee off the roster) on a terminal of each; returns the
    flagged records' ids by county."""
    await add_other_county(server)
    body = HEADER + "".join(f"{no},王{n},男,{HOME_VILLAGE}\n" for n, no in enumerate(HOME_MEMBERS))
    body += f"{OTHER_MEMBER},王外,女,{OTHER_VILLAGE}\n"
    async with server.http.post("/api/v1/admin/members/import", data=body.encode()) as r:
        assert r.status == 200 and (await r.json())["added"] == 3
    # 21:00 of the county's yesterday: both records fall in one county day and month,
    # whatever the hour the test runs (two hours ago could straddle midnight there)
    shanghai = ZoneInfo("Asia/Shanghai")
    midnight = datetime.now(shanghai).replace(hour=0, minute=0, second=0, microsecond=0)
    started = (midnight - timedelta(hours=3)).astimezone(UTC)
    flagged = {}
    for county, terminal, member in ((HOME, HOME_TERMINAL, HOME_MEMBERS[0]),
                                     (OTHER, OTHER_TERMINAL, OTHER_MEMBER)):
        off_roster = record([member, "8888"], started + timedelta(minutes=30))
        status, _ = await send(server, [record([member], started, watched=1800), off_roster],
                               terminal)
        assert status == 200
        flagged[county] = off_roster["record_id"]
    return flagged


async def _json(http: aiohttp.ClientSession, path: str, status: int = 200) -> Any:
    async with http.get(path) as r:
        assert r.status == status, await r.text()
        return await r.json()


async def _csv(http: aiohttp.ClientSession, path: str) -> list[list[str]]:
    async with http.get(path) as r:
        assert r.status == 200, await r.text()
        return _table(await r.read())


async def test_coverage_is_the_countys(server: Server, two_counties: dict[str, str]) -> None:
    path = f"/api/v1/admin/reports/coverage?{_period()}"
    async with await county_admin(server, HOME, "viewer") as http:
        rows = (await _json(http, path))["rows"]
        table = await _csv(http, path + "&format=csv")
    total = rows[0]
    assert (total["level"], total["code"], total["name"]) == ("county", HOME, "全县")
    assert (total["members"], total["trained"]) == (2, 1)
    places = [r for r in rows if r["level"] != "county"]
    assert places and all(r["code"].startswith(HOME) for r in places)
    assert HOME_VILLAGE in {r["code"] for r in places}
    assert [r[1] for r in table[1:]] == [r["code"] for r in rows]  # the CSV, row for row

    rows = (await _json(server.http, path))["rows"]  # the province: both counties
    codes = {r["code"] for r in rows}
    assert {OTHER_UNIT, *OTHER_VILLAGES, HOME_VILLAGE} <= codes
    assert (rows[0]["code"], rows[0]["members"], rows[0]["trained"]) == ("", 3, 2)


async def test_members_of_the_county_only(server: Server, two_counties: dict[str, str]) -> None:
    async with await county_admin(server, HOME, "viewer") as http:
        found = await _json(http, "/api/v1/admin/members?q=王")
        assert sorted(m["member_no"] for m in found["matches"]) == list(HOME_MEMBERS)
        assert (await _json(http, f"/api/v1/admin/members?q={OTHER_MEMBER}"))["matches"] == []
        mine = await _json(http, f"/api/v1/admin/reports/members/{HOME_MEMBERS[0]}")
        assert mine["village_code"] == HOME_VILLAGE and mine["sessions"] == 2
        theirs = (await _json(http, f"/api/v1/admin/reports/members/{OTHER_MEMBER}", 404))["error"]
        nobody = (await _json(http, "/api/v1/admin/reports/members/7777777", 404))["error"]
        async with http.get(f"/api/v1/admin/reports/members/{OTHER_MEMBER}?format=csv") as r:
            assert r.status == 404
    assert theirs["code"] == nobody["code"] == "unknown_member"
    assert nobody["message"].startswith("名册中没有序号为 7777777 的党员"), nobody["message"]
    assert theirs["message"] == nobody["message"].replace("7777777", OTHER_MEMBER)
    found = await _json(server.http, "/api/v1/admin/members?q=王")
    assert len(found["matches"]) == 3
    theirs = await _json(server.http, f"/api/v1/admin/reports/members/{OTHER_MEMBER}")
    assert theirs["village_code"] == OTHER_VILLAGE and theirs["sessions"] == 2


async def test_terminals_of_the_county_only(server: Server, two_counties: dict[str, str]) -> None:
    path = f"/api/v1/admin/reports/terminals?{_period()}"
    async with await county_admin(server, HOME, "viewer") as http:
        rows = (await _json(http, path))["rows"]
        table = await _csv(http, path + "&format=csv")
        records = await _json(http, f"/api/v1/admin/terminals/{HOME_TERMINAL}/attendance")
        theirs = (await _json(http, f"/api/v1/admin/terminals/{OTHER_TERMINAL}/attendance",
                              404))["error"]
        nothing = (await _json(http, "/api/v1/admin/terminals/T999/attendance", 404))["error"]
    terminals = {r["terminal_id"] for r in rows}
    assert len(terminals) == 211 and all(t.startswith(f"T{HOME}") for t in terminals)
    assert {r[0] for r in table[1:]} == terminals
    assert any(r["terminal_id"] == HOME_TERMINAL and r["sessions"] == 2 for r in rows)
    assert len(records) == 2
    assert theirs["code"] == nothing["code"] == "unknown_terminal"

    rows = (await _json(server.http, path))["rows"]
    assert len({r["terminal_id"] for r in rows}) == 213
    assert len(await _json(server.http, f"/api/v1/admin/terminals/{OTHER_TERMINAL}/attendance")) == 2


async def test_flagged_records_of_the_county_only(server: Server,
                                                  two_counties: dict[str, str]) -> None:
    url = "/api/v1/admin/attendance/flagged"
    async with await county_admin(server, HOME) as http:
        listed = (await _json(http, url))["records"]
        assert [(f["terminal_id"], f["record_id"]) for f in listed] == [
            (HOME_TERMINAL, two_counties[HOME])]
        confirm = f"{url}/{OTHER_TERMINAL}/{two_counties[OTHER]}/confirm"
        async with http.post(confirm, json={"started_at": None}) as r:
            assert r.status == 404
            theirs = (await r.json())["error"]
        async with http.post(f"{url}/{HOME_TERMINAL}/no-such-record/confirm",
                             json={"started_at": None}) as r:
            assert r.status == 404
            nothing = (await r.json())["error"]
        assert theirs["code"] == nothing["code"] == "unknown_record"
        async with http.post(f"{url}/{HOME_TERMINAL}/{two_counties[HOME]}/confirm",
                             json={"started_at": None}) as r:
            assert r.status == 204
        assert (await _json(http, url))["records"] == []
    listed = (await _json(server.http, url))["records"]
    assert [(f["terminal_id"], f["record_id"]) for f in listed] == [
        (OTHER_TERMINAL, two_counties[OTHER])]  # still waiting for OTHER's confirmation


async def test_roster_import_refuses_other_countys_rows(server: Server,
                                                        two_counties: dict[str, str]) -> None:
    body = (HEADER + f"9003,李一,男,{HOME_VILLAGE}\n"
            f"9004,李二,女,{OTHER_VILLAGE}\n"
            "9005,李三,男,999999999999\n"
            f"{OTHER_MEMBER},李四,男,{HOME_VILLAGE}\n"
            f"{HOME_MEMBERS[1]},王二改,男,{HOME_VILLAGE}\n").encode()
    async with await county_admin(server, HOME) as http:
        for query in ("?dry_run=1", ""):
            async with http.post(f"/api/v1/admin/members/import{query}", data=body) as r:
                assert r.status == 200, await r.text()
                report = await r.json()
            assert (report["added"], report["updated"], report["rejected"]) == (1, 1, 3), query
            errors = {e["row"]: e["message"] for e in report["errors"]}
            assert set(errors) == {3, 4, 5}
            assert errors[3] == errors[4].replace("999999999999", OTHER_VILLAGE)
            assert OTHER_MEMBER in errors[5]
        found = await _json(http, "/api/v1/admin/members?q=李")
        assert [m["member_no"] for m in found["matches"]] == ["9003"]
    # nothing of the refused rows stored: OTHER's member unchanged, no 9004
    theirs = await _json(server.http, f"/api/v1/admin/reports/members/{OTHER_MEMBER}")
    assert (theirs["name"], theirs["village_code"]) == ("王外", OTHER_VILLAGE)
    await _json(server.http, "/api/v1/admin/reports/members/9004", 404)
    changed = await _json(server.http, f"/api/v1/admin/reports/members/{HOME_MEMBERS[1]}")
    assert changed["name"] == "王二改"
    # the province's account may still move a member to any county
    async with server.http.post("/api/v1/admin/members/import", data=body) as r:
        assert (await r.json())["rejected"] == 1  # only the village that does not exist

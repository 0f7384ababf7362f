"""A province of counties: every township belongs to the county its code begins with;
the province report gives each county's terminals online, coverage and readiness for
the sessions ahead, with the province's total, as JSON or CSV; a county can be named.
On SQLite and on PostgreSQL alike."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server.appkeys import CONFIG, DB
from server.queries import rollups, trained_months
from tests import tusclient
from tests.conftest import Server, admin_session
from tests.county_scope import (
    OTHER,
    OTHER_TERMINALS,
    OTHER_VILLAGES,
    add_other_county,
    county_admin,
)
from tests.test_attendance import record, roster, send
from tests.test_fleet import T1, T2, beat, heartbeat

pytestmark = pytest.mark.asyncio
__all__ = ["roster"]  # the fixture, used by name


async def report(server: Server, query: str = "") -> dict[str, Any]:
    async with server.http.get(f"/api/v1/admin/province{query}") as r:
        assert r.status == 200, await r.text()
        return dict(await r.json())


async def test_counties_online_and_readiness(server: Server, clip: Path) -> None:
    await add_other_county(server)
    up = await tusclient.upload(server.http, clip.read_bytes(), title="冬训第一课")
    sha, content_id = up.headers["Yuanjiao-Sha256"], up.headers["Yuanjiao-Content-Id"]
    starts = datetime.now(UTC) + timedelta(days=1)
    async with server.http.post("/api/v1/admin/sessions", json={
            "title": "冬训", "starts_at": starts.isoformat(), "content_ids": [content_id],
            "village_codes": ["140121100001", "140121100002", f"{OTHER}100001"]}) as r:
        assert r.status == 201
    await beat(await server.as_terminal(T1), T1, heartbeat([{"sha256": sha, "state": "ready",
                                                             "bytes_present": 1}]))
    await beat(await server.as_terminal(T2), T2, heartbeat([]))

    got = await report(server)
    by_code = {c["code"]: c for c in got["counties"]}
    assert set(by_code) == {"140121", OTHER}
    home, other = by_code["140121"], by_code[OTHER]
    assert (home["terminals"], home["online"]) == (211, 2)
    assert (other["villages"], other["terminals"], other["online"]) == (2, 2, 0)
    assert (home["sessions_ahead"], home["due"], home["ready"]) == (1, 2, 1)
    assert home["readiness_rate"] == 0.5
    assert (other["sessions_ahead"], other["due"], other["ready"]) == (1, 1, 0)
    total = got["total"]
    assert (total["name"], total["terminals"], total["online"], total["due"], total["ready"]) == (
        "全省", 213, 2, 3, 1)
    assert other["name"] == OTHER  # unnamed yet: shown by its code

    async with server.http.put(f"/api/v1/admin/counties/{OTHER}", json={"name": "榆次区"}) as r:
        assert r.status == 200
    async with server.http.put("/api/v1/admin/counties/999999", json={"name": "无此县"}) as r:
        assert r.status == 404
        err = (await r.json())["error"]
        assert err["code"] == "unknown_county" and "999999" in err["message"]
    async with server.http.get("/api/v1/admin/province?format=csv") as r:
        assert r.status == 200
        rows = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    assert rows[0][:3] == ["县代码", "县", "村（社区）"]
    assert rows[1][1] == "全省" and rows[-1][:2] == [OTHER, "榆次区"]


async def test_coverage_by_county(server: Server) -> None:
    """Members of each county, and those trained in the period (from the roll-ups)."""
    await add_other_county(server)
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()

    def members(c: Any) -> None:
        from sqlalchemy import text
        for n, village in enumerate(["140121100001", "140121100001", f"{OTHER}100001"]):
            c.execute(text("INSERT INTO members (member_no, village_code, name, updated_at) "
                           "VALUES (:no, :v, :name, :at)"),
                      {"no": f"M{n}", "v": village, "name": f"党员{n}", "at": "2026-01-01T00:00:00+00:00"})
        c.execute(text("INSERT INTO member_days (member_no, day, records) "
                       "VALUES ('M2', :day, 1)"), {"day": day})
        trained_months.mark(c, ["M2"])  # as an ingest does

    await server.running.app[DB].write(members)
    got = await report(server, f"?from={day[:8]}01&to={day}")
    by_code = {c["code"]: c for c in got["counties"]}
    assert (by_code["140121"]["members"], by_code["140121"]["trained"]) == (2, 0)
    assert (by_code[OTHER]["members"], by_code[OTHER]["trained"], by_code[OTHER]["coverage_rate"]) == (
        1, 1, 1.0)
    assert (got["total"]["members"], got["total"]["trained"]) == (3, 1)


async def trained(server: Server, first: str, last: str) -> dict[str, int]:
    """The province report's trained members per county over [first, last]."""
    got = await report(server, f"?from={first}&to={last}")
    return {c["code"]: c["trained"] for c in got["counties"]}


def _noon(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00+08:00")


async def _trained_by_village_county(server: Server, first: str, last: str) -> dict[str, int]:
    """The coverage report's trained members (one look-up per member), summed per county."""
    async with server.http.get(f"/api/v1/admin/reports/coverage?from={first}&to={last}") as r:
        assert r.status == 200, await r.text()
        rows = (await r.json())["rows"]
    by_county: dict[str, int] = {}
    for row in rows:
        if row["level"] == "village":
            by_county[row["code"][:6]] = by_county.get(row["code"][:6], 0) + row["trained"]
    return by_county


async def test_trained_months_follow_records_confirmations_and_moves(
        server: Server, roster: list[str]) -> None:
    """The province's coverage comes from trained months per county: over whole months,
    months cut at either end, late and confirmed records, and a member who moved to
    another county, it equals the coverage report's own count per member; a rebuild
    gives the same county rows as the folds did."""
    await add_other_county(server)
    other = [f"9{n:05d}" for n in (1, 2)]
    csv_body = "序号,姓名,所在村（社区）代码\n" + "".join(
        f"{n},外县党员{i},{OTHER_VILLAGES[0]}\n" for i, n in enumerate(other, 1))
    async with server.http.post("/api/v1/admin/members/import", data=csv_body.encode(),
                                headers={"Content-Type": "text/csv"}) as r:
        assert r.status == 200, await r.text()
    home = [record(roster[0:3], _noon("2026-03-05"), watched=1800),
            record(roster[1:4], _noon("2026-03-20"), watched=1800),
            record(roster[3:5], _noon("2026-04-10"), watched=1800),
            record(roster[5:6], _noon("2026-03-21"), watched=600)]
    backwards = record(roster[6:7], _noon("2026-03-22"), watched=1200)
    backwards["ended_at"] = _noon("2026-03-21").isoformat()  # held for a person
    assert (await send(server, [*home, backwards]))[0] == 200
    assert (await send(server, [record(roster[0:1], _noon("2026-06-30"), watched=900)]))[0] == 200
    away = [record(other[:1], _noon("2026-03-31"), watched=900),
            record(other, _noon("2026-05-02"), watched=900)]
    assert (await send(server, away, terminal=OTHER_TERMINALS[0]))[0] == 200
    url = f"/api/v1/admin/attendance/flagged/{T1}/{backwards['record_id']}/confirm"
    async with server.http.post(url, json={"started_at": _noon("2026-04-15").isoformat()}) as r:
        assert r.status == 204, await r.text()
    # roster[2], trained in March at home, moves to the other county
    async with server.http.post("/api/v1/admin/members/import", headers={"Content-Type": "text/csv"},
                                data=f"序号,姓名,所在村（社区）代码\n{roster[2]},迁出党员,"
                                     f"{OTHER_VILLAGES[1]}\n".encode()) as r:
        assert r.status == 200, await r.text()

    periods = [("2026-03-01", "2026-03-31"), ("2026-03-06", "2026-03-31"),
               ("2026-03-21", "2026-04-10"), ("2026-03-01", "2026-06-29"),
               ("2026-01-01", "2026-12-31"), ("2026-04-11", "2026-04-30"),
               ("2026-03-31", "2026-05-02"), ("2026-07-01", "2026-07-31")]
    for first, last in periods:
        expected = await _trained_by_village_county(server, first, last)
        got = await trained(server, first, last)
        assert got == {"140121": expected.get("140121", 0), OTHER: expected.get(OTHER, 0)}, (first, last)
    # roster 0, 1, 3, 5 at home; the moved one and 900001 away; roster[0] on the 5th only
    assert await trained(server, "2026-03-01", "2026-03-31") == {"140121": 4, OTHER: 2}
    assert await trained(server, "2026-03-06", "2026-03-31") == {"140121": 3, OTHER: 2}

    def tables(c: Any) -> tuple[list[Any], list[Any]]:
        from sqlalchemy import text
        return (c.execute(text("SELECT * FROM county_months ORDER BY 1, 2, 3")).all(),
                c.execute(text("SELECT * FROM member_months ORDER BY 1, 2")).all())

    db = server.running.app[DB]
    await db.write(trained_months.fold)
    folded = await db.read(tables)
    assert ("140122", "2026-03", "", 2) in [tuple(r) for r in folded[0]]
    await db.write(lambda c: rollups.rebuild(c, server.running.app[CONFIG].rollup_basis))
    assert await db.read(tables) == folded


async def test_county_account_is_kept_to_its_county(server: Server) -> None:
    """A county's account knows its county; the province's work (and any endpoint that
    does not yet keep it inside its county) answers it 403 province_only, in Chinese."""
    await add_other_county(server)
    async with await county_admin(server, OTHER) as http:
        async with http.get("/api/v1/auth/session") as r:
            assert r.status == 200 and (await r.json())["county"] == OTHER
        for method, path in (("GET", "/api/v1/admin/province"),
                             ("PUT", f"/api/v1/admin/counties/{OTHER}")):
            async with http.request(method, path, json={"name": "榆次区"}) as r:
                assert r.status == 403
                err = (await r.json())["error"]
                assert err["code"] == "province_only" and OTHER in err["message"]
    async with server.http.get("/api/v1/auth/session") as r:
        assert (await r.json())["county"] is None  # the province's account


async def test_province_account_reads_one_county(server: Server) -> None:
    """With ?county= the province's account reads a county's page as that county's account
    does; an unknown county is 404 unknown_county; a county's account stays in its own."""
    await add_other_county(server)
    async with server.http.get("/api/v1/admin/counties") as r:
        assert r.status == 200
        assert [c["code"] for c in await r.json()] == ["140121", OTHER]

    async def fleet(http: Any, query: str = "") -> set[str]:
        async with http.get(f"/api/v1/admin/fleet{query}") as r:
            assert r.status == 200, await r.text()
            return {t["id"] for t in (await r.json())["terminals"]}

    assert await fleet(server.http, f"?county={OTHER}") == set(OTHER_TERMINALS)
    everything = await fleet(server.http)
    assert set(OTHER_TERMINALS) < everything and len(everything) == 213
    for bad in ("", "14012", "14012x", "１４０１２１"):
        async with server.http.get("/api/v1/admin/fleet", params={"county": bad}) as r:
            assert r.status == 400, bad
            assert "6 位数字" in (await r.json())["error"]["message"]
    async with server.http.get("/api/v1/admin/fleet?county=999999") as r:
        assert r.status == 404
        err = (await r.json())["error"]
        assert err["code"] == "unknown_county" and "999999" in err["message"]
    async with server.http.get(f"/api/v1/admin/province?county={OTHER}") as r:
        assert r.status == 200  # the province's own page is the whole province's
        assert len((await r.json())["counties"]) == 2
    async with await county_admin(server, "140121") as http:
        home = await fleet(http, f"?county={OTHER}")
        assert len(home) == 211 and not home & set(OTHER_TERMINALS)


async def test_county_account_needs_a_known_county(server: Server) -> None:
    from server.queries.auth import UnknownCounty

    with pytest.raises(UnknownCounty):
        await county_admin(server, "999999")


async def test_county_api_tokens_stay_in_their_county(server: Server) -> None:
    """A county's account makes API tokens for its scripts: they speak for its county
    alone; it lists and revokes its county's tokens, and another's look unknown."""
    await add_other_county(server)
    async with server.http.post("/api/v1/admin/tokens", json={"name": "省里的脚本"}) as r:
        assert r.status == 201
        province_token = (await r.json())["id"]
    async with await county_admin(server, OTHER) as http:
        async with http.post("/api/v1/admin/tokens", json={"name": "县里的脚本"}) as r:
            assert r.status == 201, await r.text()
            made = await r.json()
        async with admin_session(server.running, made["token"]) as script:
            async with script.get("/api/v1/admin/fleet") as r:
                assert r.status == 200
                assert {t["id"] for t in (await r.json())["terminals"]} == set(OTHER_TERMINALS)
            async with script.get("/api/v1/admin/province") as r:
                assert r.status == 403
        async with http.get("/api/v1/admin/tokens") as r:
            names = {t["name"] for t in await r.json()}
        assert "县里的脚本" in names and "省里的脚本" not in names
        async with http.delete(f"/api/v1/admin/tokens/{province_token}") as r:
            assert r.status == 404
        async with http.delete(f"/api/v1/admin/tokens/{made['id']}") as r:
            assert r.status == 204
    async with server.http.get("/api/v1/admin/tokens") as r:
        mine = {t["id"]: t for t in await r.json()}
    assert mine[province_token]["revoked_at"] is None  # the county could not touch it
    assert mine[made["id"]]["revoked_at"] is not None  # the province sees every county's

"""The library's figures for a county's account are its county's.

Contract: `GET /contents/reach` for a county's account counts, per content in service,
the assignments that reach its county (to every terminal, to it, or to a township,
village or terminal of it), its terminals they reach, its terminals holding the file
and the bytes its terminals took from each other; another county's assignments,
terminals and holdings are not counted. The bytes this server sent are counted per
content for the whole server: a county's account gets 0 with `bytes_from_server_known`
false. `GET /contents/{id}/usage` for a county's account lists the assignments that
reach its county, the upcoming sessions it made and its terminals alone. The
province's account sees every county's figures, as before. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Server
from tests.county_scope import HOME, OTHER, OTHER_TERMINALS, OTHER_VILLAGES, add_other_county, county_admin
from tests.test_catalog import T1, V1, add_content
from tests.test_fleet import beat, heartbeat

pytestmark = pytest.mark.asyncio
UNIT = "140121100"  # 清源镇, 30 terminal points of the sample county
HOME_TERMINALS = 211


async def created(http: aiohttp.ClientSession, path: str, body: dict[str, object]) -> str:
    async with http.post(path, json=body) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["id"])


async def get(http: aiohttp.ClientSession, path: str) -> Any:
    async with http.get(path) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def reach_of(http: aiohttp.ClientSession, content_id: str) -> dict[str, Any]:
    reach = {x["content_id"]: x for x in await get(http, "/api/v1/admin/contents/reach")}
    return dict(reach[content_id])


async def test_reach_and_usage_count_the_county_s_own(server: Server, clip: Path, clip2: Path) -> None:
    await add_other_county(server)
    film, sha = await add_content(server, clip, "全省专题片")
    theirs_only, _ = await add_content(server, clip2, "他县讲座")
    starts = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    async with await county_admin(server, HOME) as home, await county_admin(server, OTHER) as other:
        everyone = await created(server.http, "/api/v1/admin/assignments",
                                 {"content_id": film, "scope": "county"})
        home_unit = await created(home, "/api/v1/admin/assignments",
                                  {"content_id": film, "scope": "unit", "target": UNIT})
        other_village = await created(other, "/api/v1/admin/assignments",
                                      {"content_id": film, "scope": "village",
                                       "target": OTHER_VILLAGES[0]})
        await created(other, "/api/v1/admin/assignments",
                      {"content_id": theirs_only, "scope": "county"})
        province_session = await created(server.http, "/api/v1/admin/sessions", {
            "title": "全省冬训", "starts_at": starts, "content_ids": [film], "village_codes": [V1]})
        home_session = await created(home, "/api/v1/admin/sessions", {
            "title": "本县冬训", "starts_at": starts, "content_ids": [film], "village_codes": [V1]})
        other_session = await created(other, "/api/v1/admin/sessions", {
            "title": "他县冬训", "starts_at": starts, "content_ids": [film],
            "village_codes": [OTHER_VILLAGES[0]]})

        # one terminal of each county holds the film, having taken some of it from peers;
        # T1 fetched it from this server
        t1 = await server.as_terminal(T1)
        async with t1.get(f"/blobs/{sha}") as r:
            assert r.status == 200
            size = len(await r.read())
        await beat(t1, T1, heartbeat([{"sha256": sha, "state": "ready", "bytes_present": size,
                                       "bytes_from_peers": 100}]))
        far = await server.as_terminal(OTHER_TERMINALS[0])
        await beat(far, OTHER_TERMINALS[0], heartbeat([
            {"sha256": sha, "state": "ready", "bytes_present": size, "bytes_from_peers": 5000}]))

        province = await reach_of(server.http, film)
        assert province == {
            "content_id": film, "assignments": 3, "targeted": HOME_TERMINALS + 2, "holding": 2,
            "bytes_from_server": size, "bytes_from_peers": 5100, "bytes_from_server_known": True}
        assert await reach_of(home, film) == {
            "content_id": film, "assignments": 2, "targeted": HOME_TERMINALS, "holding": 1,
            "bytes_from_server": 0, "bytes_from_peers": 100, "bytes_from_server_known": False}
        assert await reach_of(other, film) == {
            "content_id": film, "assignments": 2, "targeted": 2, "holding": 1,
            "bytes_from_server": 0, "bytes_from_peers": 5000, "bytes_from_server_known": False}
        # the other county's film: in the home county's library, reaching none of it
        assert await reach_of(home, theirs_only) == {
            "content_id": theirs_only, "assignments": 0, "targeted": 0, "holding": 0,
            "bytes_from_server": 0, "bytes_from_peers": 0, "bytes_from_server_known": False}
        assert (await reach_of(server.http, theirs_only))["targeted"] == 2

        path = f"/api/v1/admin/contents/{film}/usage"
        mine = await get(home, path)
        assert [a["id"] for a in mine["assignments"]] == [everyone, home_unit]
        assert [s["id"] for s in mine["sessions"]] == [home_session]
        held = [t["terminal_id"] for t in mine["terminals"] if t["holding"]]
        assert held == [T1]
        assert len(mine["terminals"]) == HOME_TERMINALS
        assert not {t["terminal_id"] for t in mine["terminals"]} & set(OTHER_TERMINALS)

        seen = await get(other, path)
        assert [a["id"] for a in seen["assignments"]] == [everyone, other_village]
        assert [s["id"] for s in seen["sessions"]] == [other_session]
        assert [(t["terminal_id"], t["holding"]) for t in seen["terminals"]] == [
            (OTHER_TERMINALS[0], True), (OTHER_TERMINALS[1], False)]

        everything = await get(server.http, path)
        assert [a["id"] for a in everything["assignments"]] == [everyone, home_unit, other_village]
        assert {s["id"] for s in everything["sessions"]} == {
            province_session, home_session, other_session}
        assert len(everything["terminals"]) == HOME_TERMINALS + 2
        assert [t["terminal_id"] for t in everything["terminals"] if t["holding"]] == [
            T1, OTHER_TERMINALS[0]]

        none_here = await get(home, f"/api/v1/admin/contents/{theirs_only}/usage")
        assert none_here["assignments"] == [] and none_here["terminals"] == []
        async with home.get("/api/v1/admin/contents/nope/usage") as r:
            assert r.status == 404

"""Contents, assignments and sessions in a province of counties.

Contract: the province's contents: a county's account sees them, may not change them
(403 province_content; its own uploads are tests/test_county_own_contents.py). An
assignment "to the county" made by a county's account reaches that county's terminals
alone; the province's account assigns to every terminal or to one county.
A county's account lists the assignments that reach its county, withdraws its own,
gets 404 for another county's and 403 (province_assignment) for the province's.
Sessions a county's account schedules belong to its county: only its villages, seen
and changed by it alone (404 to the other county), all seen by the province.
On SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from shared.protocol import Catalog
from tests.conftest import Server
from tests.county_scope import HOME, OTHER, OTHER_TERMINALS, OTHER_VILLAGES, add_other_county, county_admin
from tests.test_catalog import T1, V1, add_content, fetch

pytestmark = pytest.mark.asyncio


def shas(c: Catalog | None) -> set[str]:
    assert c is not None
    return {i.sha256 for i in c.items}


async def post(http: aiohttp.ClientSession, path: str,
               body: dict[str, object]) -> tuple[int, dict[str, object]]:
    async with http.post(path, json=body) as r:
        return r.status, dict(await r.json())


async def test_county_assignments_stay_in_their_county(server: Server, clip: Path, clip2: Path) -> None:
    await add_other_county(server)
    home_c, home_sha = await add_content(server, clip, "本县专题片")
    other_c, other_sha = await add_content(server, clip2, "他县专题片")
    async with await county_admin(server, HOME) as home, await county_admin(server, OTHER) as other:
        async with home.get("/api/v1/admin/contents") as r:  # the province's library
            assert r.status == 200 and {c["id"] for c in await r.json()} == {home_c, other_c}
        async with home.patch(f"/api/v1/admin/contents/{home_c}", json={"title": "改名"}) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "province_content"

        status, mine = await post(home, "/api/v1/admin/assignments",
                                  {"content_id": home_c, "scope": "county"})
        assert status == 201
        status, err = await post(home, "/api/v1/admin/assignments",
                                 {"content_id": home_c, "scope": "village", "target": OTHER_VILLAGES[0]})
        assert status == 422 and err["error"]["code"] == "unknown_target"  # type: ignore[index]
        status, theirs = await post(other, "/api/v1/admin/assignments",
                                    {"content_id": other_c, "scope": "village",
                                     "target": OTHER_VILLAGES[0]})
        assert status == 201
        # the province's account: every terminal
        status, everyone = await post(server.http, "/api/v1/admin/assignments",
                                      {"content_id": other_c, "scope": "county"})
        assert status == 201

        assert shas((await fetch(server, T1))[1]) == {home_sha, other_sha}
        assert shas((await fetch(server, OTHER_TERMINALS[0]))[1]) == {other_sha}
        assert shas((await fetch(server, OTHER_TERMINALS[1]))[1]) == {other_sha}

        async with home.get("/api/v1/admin/assignments") as r:
            seen = {a["id"] for a in await r.json()}
        assert seen == {mine["id"], everyone["id"]}  # not the other county's
        async with server.http.get("/api/v1/admin/assignments") as r:
            assert {a["id"] for a in await r.json()} == {mine["id"], theirs["id"], everyone["id"]}

        async with home.delete(f"/api/v1/admin/assignments/{theirs['id']}") as r:
            assert r.status == 404
        async with home.delete(f"/api/v1/admin/assignments/{everyone['id']}") as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "province_assignment"
        async with home.delete(f"/api/v1/admin/assignments/{mine['id']}") as r:
            assert r.status == 204
    assert shas((await fetch(server, T1))[1]) == {other_sha}


async def test_province_assigns_to_one_county(server: Server, clip: Path) -> None:
    await add_other_county(server)
    c, sha = await add_content(server, clip, "给他县")
    status, _ = await post(server.http, "/api/v1/admin/assignments",
                           {"content_id": c, "scope": "county", "target": OTHER})
    assert status == 201
    status, err = await post(server.http, "/api/v1/admin/assignments",
                             {"content_id": c, "scope": "county", "target": "999999"})
    assert status == 422 and err["error"]["code"] == "unknown_target"  # type: ignore[index]
    assert shas((await fetch(server, OTHER_TERMINALS[0]))[1]) == {sha}
    assert shas((await fetch(server, T1))[1]) == set()
    async with server.http.get(f"/api/v1/admin/contents/{c}/usage") as r:
        usage = await r.json()
    assert [t["terminal_id"] for t in usage["terminals"]] == list(OTHER_TERMINALS)


async def test_county_sessions_are_the_county_s(server: Server, clip: Path) -> None:
    await add_other_county(server)
    c, _ = await add_content(server, clip, "党课")
    starts = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    async with await county_admin(server, HOME) as home, await county_admin(server, OTHER) as other:
        status, err = await post(home, "/api/v1/admin/sessions", {
            "title": "越界", "starts_at": starts, "content_ids": [c],
            "village_codes": [V1, OTHER_VILLAGES[0]]})
        assert status == 422 and err["error"]["code"] == "unknown_village"  # type: ignore[index]
        status, made = await post(home, "/api/v1/admin/sessions", {
            "title": "冬训", "starts_at": starts, "content_ids": [c], "village_codes": [V1]})
        assert status == 201
        sid = made["id"]
        async with home.get("/api/v1/admin/sessions") as r:
            assert [s["id"] for s in await r.json()] == [sid]
        async with other.get("/api/v1/admin/sessions") as r:
            assert await r.json() == []
        for method, path in (("GET", f"/api/v1/admin/sessions/{sid}"),
                             ("GET", f"/api/v1/admin/sessions/{sid}/roll-call"),
                             ("PATCH", f"/api/v1/admin/sessions/{sid}"),
                             ("DELETE", f"/api/v1/admin/sessions/{sid}")):
            async with other.request(method, path, json={"title": "改"}) as r:
                assert r.status == 404, (method, path)
        async with server.http.get(f"/api/v1/admin/sessions/{sid}") as r:
            assert r.status == 200  # the province sees every county's
        async with home.patch(f"/api/v1/admin/sessions/{sid}", json={"title": "冬训第二课"}) as r:
            assert r.status == 200 and (await r.json())["title"] == "冬训第二课"
        async with home.delete(f"/api/v1/admin/sessions/{sid}") as r:
            assert r.status == 204

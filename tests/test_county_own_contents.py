"""A county's own contents: a county's account uploads films of its own (tus, as the
province does); they are that county's alone until the province's account makes them the
whole province's. A county's account uses the province's contents but cannot change
them; another county neither sees nor uses a county's own; the province's account sees
every content and sends a county's own only to that county. The same film uploaded by a
second county is refused whole, nothing kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests import tusclient
from tests.conftest import Server
from tests.county_scope import HOME, OTHER, OTHER_VILLAGES, add_other_county, county_admin

pytestmark = pytest.mark.asyncio
A = "/api/v1/admin"


async def _upload(http: aiohttp.ClientSession, data: bytes, title: str) -> aiohttp.ClientResponse:
    return await tusclient.upload(http, data, title=title, kind="lecture", filename="lesson.mp4")


async def _ids(http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.get(f"{A}/contents") as r:
        assert r.status == 200
        return {c["id"]: c for c in await r.json()}


async def _error(r: aiohttp.ClientResponse, status: int, code: str) -> dict[str, Any]:
    assert r.status == status, await r.text()
    err: dict[str, Any] = (await r.json())["error"]
    assert err["code"] == code, err
    return err


async def test_a_county_uploads_and_keeps_its_own(server: Server, clip: Path, clip2: Path) -> None:
    await add_other_county(server)
    async with server.http.put(f"{A}/counties/{OTHER}", json={"name": "阳曲县"}) as r:
        assert r.status == 200
    province = await _upload(server.http, clip2.read_bytes(), "全省冬训")
    shared = province.headers["Yuanjiao-Content-Id"]
    starts = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    async with await county_admin(server, OTHER) as other, await county_admin(server, HOME) as home:
        # a county's account uploads; the content is its own
        up = await _upload(other, clip.read_bytes(), "本县养殖课")
        assert up.status == 204, up.status
        own = up.headers["Yuanjiao-Content-Id"]
        mine = await _ids(other)
        assert mine[own]["county"] == OTHER and mine[shared]["county"] is None
        for sha in (mine[own]["sha256"], mine[own]["poster_sha256"], mine[shared]["sha256"]):
            async with other.get(f"/blobs/{sha}", headers={"Range": "bytes=0-9"}) as r:
                assert r.status == 206  # its account previews what it uses
        everything = await _ids(server.http)
        assert everything[own]["county"] == OTHER  # the province's account sees it

        # another county neither sees nor uses it
        assert own not in await _ids(home)
        async with home.get(f"{A}/contents/{own}") as r:
            await _error(r, 404, "not_found")
        async with home.post(f"{A}/assignments", json={"content_id": own, "scope": "county"}) as r:
            await _error(r, 422, "unknown_content")
        async with home.post(f"{A}/sessions", json={
                "title": "借用", "starts_at": starts, "content_ids": [own],
                "village_codes": ["140121100001"]}) as r:
            await _error(r, 422, "unknown_content")
        async with home.patch(f"{A}/contents/{own}", json={"title": "改名"}) as r:
            await _error(r, 404, "not_found")

        # its own county uses it, changes it; the province's contents it only uses
        async with other.post(f"{A}/assignments", json={"content_id": own, "scope": "county"}) as r:
            assert r.status == 201, await r.text()
        async with other.post(f"{A}/sessions", json={
                "title": "养殖", "starts_at": starts, "content_ids": [own, shared],
                "village_codes": [OTHER_VILLAGES[0]]}) as r:
            assert r.status == 201, await r.text()
        async with other.patch(f"{A}/contents/{own}", json={"title": "本县养殖课（修订）"}) as r:
            assert r.status == 200 and (await r.json())["title"] == "本县养殖课（修订）"
        for method, path, body in (("PATCH", f"{A}/contents/{shared}", {"title": "改名"}),
                                   ("POST", f"{A}/contents/{shared}/retire", None)):
            async with other.request(method, path, json=body) as r:
                err = await _error(r, 403, "province_content")
                assert "全省共用" in err["message"] and "全省冬训" in err["message"]
        async with other.patch(f"{A}/contents/{own}", json={"whole_province": True}) as r:
            await _error(r, 403, "province_only")

        # the province's account sends a county's own to that county alone
        async with server.http.post(f"{A}/assignments", json={"content_id": own, "scope": "county",
                                                               "target": HOME}) as r:
            err = await _error(r, 422, "county_content")
            assert "《本县养殖课（修订）》是阳曲县自己的内容" in err["message"]
            assert "全省共用" in err["message"]
        async with server.http.post(f"{A}/assignments", json={"content_id": own,
                                                               "scope": "county"}) as r:
            await _error(r, 422, "county_content")  # every terminal of the province
        async with server.http.post(f"{A}/sessions", json={
                "title": "跨县", "starts_at": starts, "content_ids": [shared, own],
                "village_codes": ["140121100001", OTHER_VILLAGES[1]]}) as r:
            err = await _error(r, 422, "county_content")
            assert "《本县养殖课（修订）》是阳曲县自己的内容" in err["message"]
        async with server.http.post(f"{A}/assignments", json={"content_id": own, "scope": "village",
                                                               "target": OTHER_VILLAGES[1]}) as r:
            assert r.status == 201, await r.text()

        # ... until it makes it the whole province's: then every county uses it
        async with server.http.patch(f"{A}/contents/{own}", json={"whole_province": False}) as r:
            await _error(r, 422, "stays_province")
        async with server.http.patch(f"{A}/contents/{own}", json={"whole_province": True}) as r:
            assert r.status == 200 and (await r.json())["county"] is None
        assert (await _ids(home))[own]["title"] == "本县养殖课（修订）"
        async with home.post(f"{A}/assignments", json={"content_id": own, "scope": "county"}) as r:
            assert r.status == 201, await r.text()
        async with other.post(f"{A}/contents/{own}/retire") as r:
            await _error(r, 403, "province_content")  # the province's now

        # an assignment to every county is the province's to withdraw
        async with server.http.post(f"{A}/assignments", json={"content_id": shared,
                                                               "scope": "county"}) as r:
            everywhere = (await r.json())["id"]
        async with other.delete(f"{A}/assignments/{everywhere}") as r:
            err = await _error(r, 403, "province_assignment")
            assert "只有省级管理员能撤回" in err["message"]


async def test_the_same_film_from_a_second_county_is_refused_whole(
        server: Server, clip: Path) -> None:
    await add_other_county(server)
    data = clip.read_bytes()
    async with await county_admin(server, OTHER) as other, await county_admin(server, HOME) as home:
        own = (await _upload(other, data, "本县养殖课")).headers["Yuanjiao-Content-Id"]
        created = await tusclient.create(home, len(data), title="同一部片子", filename="same.mp4")
        location = created.headers["Location"]
        # another county's upload is not this county's to see, resume or cancel
        async with other.head(location, headers=tusclient.TUS) as r:
            assert r.status == 404
        r = await tusclient.patch(other, location, 0, data)
        assert r.status == 404
        async with other.delete(location, headers=tusclient.TUS) as r:
            assert r.status == 404

        r = await tusclient.patch(home, location, 0, data)
        assert r.status == 409
        async with home.patch(location, data=b"", headers={
                **tusclient.TUS, "Upload-Offset": str(len(data)),
                "Content-Type": "application/offset+octet-stream"}) as again:
            assert again.status == 404  # nothing half-kept: the upload is gone
        async with home.head(location, headers=tusclient.TUS) as h:
            assert h.status == 404
        assert own not in await _ids(home)
    everything = await _ids(server.http)
    assert everything[own]["county"] == OTHER and everything[own]["title"] == "本县养殖课"
    assert len([c for c in everything.values() if c["sha256"] == everything[own]["sha256"]]) == 1


async def test_the_refusal_names_the_county_and_the_film(server: Server, clip: Path) -> None:
    await add_other_county(server)
    data = clip.read_bytes()
    async with await county_admin(server, OTHER) as other, await county_admin(server, HOME) as home:
        await _upload(other, data, "本县养殖课")
        created = await tusclient.create(home, len(data), title="同一部片子", filename="same.mp4")
        headers = {**tusclient.TUS, "Upload-Offset": "0",
                   "Content-Type": "application/offset+octet-stream"}
        async with home.patch(created.headers["Location"], data=data, headers=headers) as r:
            err = await _error(r, 409, "content_of_another_county")
        assert f"县 {OTHER}自己的内容《本县养殖课》" in err["message"]  # a county not named yet
        assert "全省共用" in err["message"]

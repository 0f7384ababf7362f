"""The endpoints the county console needs beyond the basics.

- Library: `GET /contents/reach` counts per content its assignments, the terminals they
  reach and the terminals holding it; `GET /contents/{id}/usage` lists where it is used;
  `POST /contents/{id}/retire` withdraws its assignments, takes it out of upcoming
  sessions and out of every catalog, leaves it out of the library, and keeps its row
  (409 a second time, 404 for an unknown id).
- Sessions: a start in the past is refused (422 `in_the_past`) on create and edit;
  `PATCH /sessions/{id}` changes an upcoming session; `GET /sessions/{id}/roll-call`
  lists who attended, per terminal, with names.
- The learning record carries the year's counted sessions and hours and the county's
  yearly targets (settings); the server names the county's time zone.
- Members: `GET /members?q=` finds by number prefix or part of a name; an empty query
  is 400.
- Reports: `?format=xlsx` gives a real workbook with the same rows as the CSV.
- A terminal's latest attendance records, newest first; a bad limit is 400, an unknown
  terminal 404.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests import tusclient
from tests.conftest import Server
from tests.test_attendance import record, send
from tests.test_fleet import beat, heartbeat

pytestmark = pytest.mark.asyncio
T1, V1, UNIT = "T140121100001", "140121100001", "140121100"


async def add_content(server: Server, clip: Path, title: str) -> tuple[str, str]:
    r = await tusclient.upload(server.http, clip.read_bytes(), title=title)
    assert r.status == 204
    cid = r.headers["Yuanjiao-Content-Id"]
    async with server.http.get(f"/api/v1/admin/contents/{cid}") as g:
        return cid, str((await g.json())["sha256"])


async def test_reach_usage_and_retire(server: Server, clip: Path) -> None:
    cid, sha = await add_content(server, clip, "旧片")
    async with server.http.post("/api/v1/admin/assignments",
                                json={"content_id": cid, "scope": "unit", "target": UNIT}) as r:
        assert r.status == 201
    starts = datetime.now(UTC) + timedelta(days=3)
    async with server.http.post("/api/v1/admin/sessions", json={
            "title": "冬训", "starts_at": starts.isoformat(), "content_ids": [cid],
            "village_codes": [V1]}) as r:
        session_id = (await r.json())["id"]
    t1 = await server.as_terminal(T1)
    await beat(t1, T1, heartbeat([{"sha256": sha, "state": "ready", "bytes_present": 1}]))

    async with server.http.get("/api/v1/admin/contents/reach") as r:
        reach = {x["content_id"]: x for x in await r.json()}
    assert reach[cid]["assignments"] == 1 and reach[cid]["holding"] == 1
    assert reach[cid]["targeted"] == 30  # every terminal point of 清源镇
    async with server.http.get(f"/api/v1/admin/contents/{cid}/usage") as r:
        usage = await r.json()
    assert usage["assignments"][0]["target_name"] == "清源镇"
    assert [s["id"] for s in usage["sessions"]] == [session_id]
    held = [t for t in usage["terminals"] if t["holding"]]
    assert [t["terminal_id"] for t in held] == [T1] and held[0]["village_name"]

    async with server.http.post(f"/api/v1/admin/contents/{cid}/retire") as r:
        assert r.status == 204
    async with server.http.post(f"/api/v1/admin/contents/{cid}/retire") as r:
        assert r.status == 409
    async with server.http.post("/api/v1/admin/contents/nope/retire") as r:
        assert r.status == 404
    async with server.http.get("/api/v1/admin/contents") as r:
        assert await r.json() == []
    async with server.http.get("/api/v1/admin/assignments") as r:
        assert await r.json() == []
    async with server.http.get("/api/v1/admin/sessions") as r:
        assert (await r.json())[0]["items"] == []
    async with t1.get(f"/api/v1/terminals/{T1}/catalog") as r:
        assert sha not in await r.text()
    async with server.http.get(f"/api/v1/admin/contents/{cid}") as r:
        assert r.status == 200  # history still names it


async def test_sessions_past_refused_edit_and_roll_call(server: Server, clip: Path) -> None:
    cid, _ = await add_content(server, clip, "党课")
    past = datetime.now(UTC) - timedelta(days=1)
    async with server.http.post("/api/v1/admin/sessions", json={
            "title": "x", "starts_at": past.isoformat(), "content_ids": [cid],
            "village_codes": [V1]}) as r:
        assert r.status == 422
        assert (await r.json())["error"]["code"] == "in_the_past"
    starts = datetime.now(UTC) + timedelta(days=5)
    async with server.http.post("/api/v1/admin/sessions", json={
            "title": "冬训第一课", "starts_at": starts.isoformat(), "content_ids": [cid],
            "village_codes": [V1]}) as r:
        sid = (await r.json())["id"]
    later = starts + timedelta(days=1)
    async with server.http.patch(f"/api/v1/admin/sessions/{sid}", json={
            "title": "冬训第二课", "starts_at": later.isoformat(),
            "village_codes": [V1, "140121100002"]}) as r:
        assert r.status == 200, await r.text()
        changed = await r.json()
    assert changed["title"] == "冬训第二课" and len(changed["villages"]) == 2
    async with server.http.patch(f"/api/v1/admin/sessions/{sid}",
                                 json={"starts_at": past.isoformat()}) as r:
        assert r.status == 422
    async with server.http.patch("/api/v1/admin/sessions/nope", json={"title": "y"}) as r:
        assert r.status == 404

    async with server.http.get(f"/api/v1/admin/sessions/{sid}/roll-call") as r:
        assert await r.json() == []
    import_body = "序号,姓名,村代码\n900001,张三,140121100001\n900002,李四,140121100001\n"
    async with server.http.post("/api/v1/admin/members/import", data=import_body.encode()) as r:
        assert r.status == 200, await r.text()
    rec = record(["900001", "900002"], past)
    rec["session_id"] = sid
    status, _ = await send(server, [rec])
    assert status == 200
    async with server.http.get(f"/api/v1/admin/sessions/{sid}/roll-call") as r:
        roll = await r.json()
    assert [m["name"] for m in roll[0]["members"]] == ["张三", "李四"]
    assert roll[0]["terminal_id"] == T1


async def test_member_search(server: Server) -> None:
    body = "序号,姓名,村代码\n900001,张三,140121100001\n900002,张三丰,140121100002\n" \
           "900003,李四,140121100001\n"
    async with server.http.post("/api/v1/admin/members/import", data=body.encode()) as r:
        assert r.status == 200
    async with server.http.get("/api/v1/admin/members", params={"q": "张三"}) as r:
        found = await r.json()
    assert [m["member_no"] for m in found["matches"]] == ["900001", "900002"]
    assert found["matches"][0]["unit_name"] and not found["truncated"]
    async with server.http.get("/api/v1/admin/members", params={"q": "900003"}) as r:
        assert [m["name"] for m in (await r.json())["matches"]] == ["李四"]
    async with server.http.get("/api/v1/admin/members", params={"q": "%"}) as r:
        assert (await r.json())["matches"] == []
    async with server.http.get("/api/v1/admin/members", params={"q": " "}) as r:
        assert r.status == 400


async def test_reports_as_xlsx(server: Server) -> None:
    async with server.http.get("/api/v1/admin/reports/coverage", params={"format": "xlsx"}) as r:
        assert r.status == 200
        assert "spreadsheetml" in r.headers["Content-Type"]
        sheet = load_workbook(io.BytesIO(await r.read())).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("层级", "代码", "名称") and rows[1][2] == "全县"
    assert len(rows) > 200  # county, townships and every village


async def test_terminal_records(server: Server) -> None:
    started = datetime.now(UTC) - timedelta(days=1)
    assert (await send(server, [record([], started, watched=1200)]))[0] == 200
    async with server.http.get(f"/api/v1/admin/terminals/{T1}/attendance") as r:
        (rec,) = await r.json()
    assert rec["title"] == "冬训" and rec["attendees"] == 0 and rec["watched_seconds"] == 1200
    async with server.http.get(f"/api/v1/admin/terminals/{T1}/attendance?limit=0") as r:
        assert r.status == 400
    async with server.http.get("/api/v1/admin/terminals/nope/attendance") as r:
        assert r.status == 404


async def test_member_record_year_against_targets(server: Server) -> None:
    body = "序号,姓名,村代码\n900001,张三,140121100001\n"
    async with server.http.post("/api/v1/admin/members/import", data=body.encode()) as r:
        assert r.status == 200
    started = datetime.now(UTC) - timedelta(hours=2)
    assert (await send(server, [record(["900001"], started, watched=5400)]))[0] == 200
    async with server.http.get("/api/v1/admin/reports/members/900001") as r:
        rec = await r.json()
    assert (rec["year_sessions"], rec["year_watched_seconds"]) == (1, 5400)
    assert (rec["target_sessions"], rec["target_hours"]) == (12, 24.0)  # the settings' defaults
    async with server.http.get("/api/v1/server") as r:
        assert (await r.json())["time_zone"] == "Asia/Shanghai"

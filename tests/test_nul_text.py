"""Text holding the NUL character never reaches the database (PostgreSQL cannot store it
in text; SQLite would keep a string that cuts short in many tools): a JSON body with
`\\u0000` in any string the server keeps is a 422 `nul_character` naming where, a path or query with %00 a
400, a roster row with NUL is refused with its line while the other rows import, and
nothing of the refused input is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.conftest import Server
from tests.test_attendance import record
from tests.test_fleet import T1, heartbeat

pytestmark = pytest.mark.asyncio
HEADER = "序号,姓名,性别,民族,出生日期,入党日期,所在党支部,所在村（社区）代码,人员类别,联系电话\n"


async def test_json_with_nul_is_refused_with_its_place(server: Server) -> None:
    t1 = await server.as_terminal(T1)
    body = json.dumps(heartbeat([], status="ok\u0000 hidden"))
    assert "\\u0000" in body
    async with t1.post(f"/api/v1/terminals/{T1}/heartbeat", data=body,
                       headers={"Content-Type": "application/json"}) as r:
        assert r.status == 422, await r.text()
        error = (await r.json())["error"]
    assert error["code"] == "nul_character" and error["details"]["path"] == "$.status"
    assert "NUL" in error["message_en"] and "$.status" in error["message"]
    async with server.http.get("/api/v1/admin/fleet") as r:
        seen = {t["id"]: t for t in (await r.json())["terminals"]}
    assert seen[T1]["last_seen"] is None  # nothing of the heartbeat was stored

    batch = {"terminal_clock": heartbeat([])["terminal_clock"],
             "records": [record([], datetime.now(UTC)) | {"title": "第一课\u0000"}]}
    async with t1.post(f"/api/v1/terminals/{T1}/attendance", json=batch) as r:
        assert r.status == 422
        assert (await r.json())["error"]["details"]["path"] == "$.records[0].title"
    async with server.http.get(f"/api/v1/admin/terminals/{T1}/attendance") as r:
        assert r.status == 200 and await r.json() == []

    # A member the server does not keep may hold anything: it is never stored.
    ignored = json.dumps(heartbeat([]) | {"extension": "x\u0000y"})
    async with t1.post(f"/api/v1/terminals/{T1}/heartbeat", data=ignored,
                       headers={"Content-Type": "application/json"}) as r:
        assert r.status == 200, await r.text()

    # A backslash written out ("\\u0000" in the text) is no NUL and is stored as sent.
    written_out = json.dumps(heartbeat([], status="path C:\\u0000"))
    async with t1.post(f"/api/v1/terminals/{T1}/heartbeat", data=written_out,
                       headers={"Content-Type": "application/json"}) as r:
        assert r.status == 200, await r.text()


async def test_login_name_with_nul(server: Server) -> None:
    async with server.http.post("/api/v1/auth/login",
                                json={"username": "admin\u0000", "password": "x" * 12}) as r:
        assert r.status == 422
        assert (await r.json())["error"]["details"]["path"] == "$.username"


@pytest.mark.parametrize("path", [
    f"/api/v1/admin/terminals/{T1}%00/attendance",
    "/api/v1/admin/members?q=%E9%99%88%00",
    "/api/v1/admin/villages?unit=140121100%00",
])
async def test_path_or_query_with_nul(server: Server, path: str) -> None:
    async with server.http.get(path) as r:
        assert r.status == 400, await r.text()
        error = (await r.json())["error"]
    assert error["code"] == "bad_request" and "%00" in error["message"]


async def test_roster_row_with_nul(server: Server) -> None:
    body = (HEADER + "9901,陈\x00一,男,汉族,1960-01-01,1985-01-01,支部,140121100001,正式党员,\n"
            "9902,李二,女,汉族,1960-01-01,1985-01-01,支部,140121100001,正式党员,\n").encode()
    async with server.http.post("/api/v1/admin/members/import", data=body,
                                headers={"Content-Type": "text/csv"}) as r:
        assert r.status == 200, await r.text()
        report = await r.json()
    assert report["added"] == 1 and report["rejected"] == 1
    assert report["errors"][0]["row"] == 2 and "NUL" in report["errors"][0]["message"]
    async with server.http.get("/api/v1/admin/members?q=99") as r:
        assert [m["member_no"] for m in (await r.json())["matches"]] == ["9902"]

"""The member roster: the county's export as UTF-8 with a BOM, GBK, or XLSX; matched
to villages by code; bad rows reported one by one with their line, good rows kept; and
each village's roster available to its terminals."""

from __future__ import annotations

import io

import openpyxl
import pytest

from tests.conftest import COUNTY, Server

pytestmark = pytest.mark.asyncio
HEADER = "序号,姓名,性别,民族,出生日期,入党日期,所在党支部,所在村（社区）代码,人员类别,联系电话\n"


async def import_roster(server: Server, body: bytes, content_type: str = "text/csv"
                        ) -> tuple[int, dict[str, object]]:
    async with server.http.post("/api/v1/admin/members/import", data=body,
                                headers={"Content-Type": content_type}) as r:
        return r.status, await r.json()


async def test_full_county_roster(server: Server) -> None:
    data = (COUNTY / "members.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    status, report = await import_roster(server, data)
    assert status == 200
    rows = data.decode("utf-8-sig").count("\n") - 1
    assert {k: report[k] for k in ("added", "updated", "rejected", "errors", "warnings", "dry_run",
                                   "skipped_title_rows")} == {
        "added": rows, "updated": 0, "rejected": 0, "errors": [], "warnings": [], "dry_run": False,
        "skipped_title_rows": 0}
    assert report["rows_truncated"] == (rows > 2000)
    status, again = await import_roster(server, data)
    assert again["added"] == 0 and again["updated"] == rows


async def test_gbk_roster_and_terminal_view(server: Server) -> None:
    data = (COUNTY / "members-sample-gbk.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    status, report = await import_roster(server, data)
    assert status == 200 and report["rejected"] == 0
    added = report["added"]
    assert isinstance(added, int) and added > 10
    async with (await server.as_terminal("T140121100001")).get("/api/v1/terminals/T140121100001/roster") as r:
        roster = await r.json()
    assert roster["village_code"] == "140121100001"
    assert len(roster["members"]) == added
    first_line = data.decode("gbk").splitlines()[1].split(",")
    assert roster["members"][0]["member_no"] == first_line[0]
    assert roster["members"][0]["name"] == first_line[1]
    async with (await server.as_terminal("T140121100002")).get("/api/v1/terminals/T140121100002/roster") as r:
        assert (await r.json())["members"] == []


async def test_bad_rows_reported_good_rows_kept(server: Server) -> None:
    body = HEADER + (
        "1,王伟,男,汉族,1960-01-02,1985-07-01,中共某村支部委员会,140121100001,正式党员,\n"
        ",无号,男,汉族,1960-01-02,1985-07-01,支部,140121100001,正式党员,\n"
        "3,,男,汉族,1960-01-02,1985-07-01,支部,140121100001,正式党员,\n"
        "4,李娜,女,汉族,1960-01-02,1985-07-01,支部,999999999999,正式党员,\n"
        "5,张强,X,汉族,1960-01-02,1985-07-01,支部,140121100001,正式党员,\n"
        "6,赵敏,女,汉族,六十年代,1985-07-01,支部,140121100001,正式党员,\n"
        "1,重复,男,汉族,1960-01-02,1985-07-01,支部,140121100001,正式党员,\n"
        "\n"
        "8,刘洋,男,汉族,1962/3/4,1990年7月1日,支部,140121100002,预备党员,\n"
    )
    status, report = await import_roster(server, body.encode("utf-8"))
    assert status == 200
    assert report["added"] == 3 and report["rejected"] == 5
    errors = report["errors"]
    assert isinstance(errors, list)
    assert [e["row"] for e in errors] == [3, 4, 5, 6, 8]
    assert errors[0]["message"].startswith("序号为空")
    assert errors[1]["message"].startswith("姓名为空")
    assert "999999999999" in errors[2]["message"]
    assert errors[3]["message"].startswith("性别")
    assert "第 2 行和第 8 行" in errors[4]["message"] and "first on line 2" in errors[4]["message"]
    warnings = report["warnings"]
    assert isinstance(warnings, list)
    assert [w["row"] for w in warnings] == [7]
    assert "六十年代" in warnings[0]["message"] and "出生日期" in warnings[0]["message"]
    async with (await server.as_terminal("T140121100002")).get("/api/v1/terminals/T140121100002/roster") as r:
        assert [m["name"] for m in (await r.json())["members"]] == ["刘洋"]


async def test_xlsx_roster(server: Server) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.strip().split(","))
    sheet.append([101, "孙丽", "女", "汉族", "1970-05-06", "1995-07-01", "支部", "140121100003",
                  "正式党员", ""])
    buf = io.BytesIO()
    book.save(buf)
    status, report = await import_roster(
        server, buf.getvalue(),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert status == 200 and report["added"] == 1, report
    async with (await server.as_terminal("T140121100003")).get("/api/v1/terminals/T140121100003/roster") as r:
        assert (await r.json())["members"][0] == {
            "member_no": "101", "name": "孙丽", "sex": "女", "branch": "支部", "category": "正式党员"}


@pytest.mark.parametrize(("body", "code"), [
    (b"", 422),  # an empty file is no roster (the document allows an empty body)
    ("姓名,性别\n王伟,男\n".encode(), 422),
    (b"\xff\xfe\x00\x01garbage\x80\x81" * 3, 422),
    (b"PK\x03\x04 not really a spreadsheet", 422),
])
async def test_unreadable_roster(server: Server, body: bytes, code: int) -> None:
    status, report = await import_roster(server, body)
    assert status == code
    error = report["error"]
    assert isinstance(error, dict) and error["message"]

"""Rosters as counties really export them (the field cases), through the real endpoint
and the real CLI.

* The header is found below title rows (GBK CSV, XLSX with a merged title cell); the
  answer says how many title rows were skipped; line numbers are the sheet's rows.
* Numbers Excel turned into scientific notation are refused row by row with the fix
  (format the column as Text), never stored, never called a "duplicate" of each other.
* Year-month dates are kept as year-month; an unreadable date is a warning, not a refusal.
* One 序号 twice: the second row refused naming both lines, the first kept.
* `.xls` (Excel 97-2003) is read.
* Digits typed with an input method (full-width) are normalised (NFKC) before checks.
* `?dry_run=1` and `import-members --dry-run` answer row by row and store nothing.
* A spreadsheet that would inflate absurdly (a zip bomb) is refused before it is opened.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from server.appkeys import DB
from server.db import Database, sqlite_url
from server.migrations import MIGRATIONS
from tests.conftest import COUNTY, REPO, Server, database_url

pytestmark = pytest.mark.asyncio
ROSTER = REPO / "tests" / "field_cases" / "roster"
HEADER = "序号,姓名,性别,民族,出生日期,入党日期,所在党支部,所在村（社区）代码,人员类别,联系电话\n"


async def post(server: Server, body: bytes, query: str = "") -> tuple[int, dict[str, Any]]:
    async with server.http.post("/api/v1/admin/members/import" + query, data=body,
                                headers={"Content-Type": "text/csv"}) as r:
        return r.status, await r.json()


def _members(c: Connection) -> dict[str, tuple[str, str | None, str | None]]:
    return {r[0]: (r[1], r[2], r[3]) for r in c.execute(
        text("SELECT member_no, village_code, born, joined FROM members"))}


async def members(server: Server) -> dict[str, tuple[str, str | None, str | None]]:
    return await server.running.app[DB].read(_members)


async def test_scientific_notation_refused_with_the_fix(server: Server) -> None:
    status, report = await post(server, (ROSTER / "sci_notation.csv").read_bytes())
    assert status == 200
    assert report["added"] == 0 and report["rejected"] == 3
    assert [e["row"] for e in report["errors"]] == [2, 3, 4]
    for e in report["errors"]:
        assert "科学计数法" in e["message"] and "文本" in e["message"]
        assert "format the column as Text" in e["message"]
        assert "重复" not in e["message"] and "appears again" not in e["message"]
    assert "1.40121E+11" in report["errors"][2]["message"]
    assert await members(server) == {}


@pytest.mark.parametrize("name", ["title_row_gbk.csv", "title_row.xlsx"])
async def test_header_below_title_rows(server: Server, name: str) -> None:
    status, report = await post(server, (ROSTER / name).read_bytes())
    assert status == 200, report
    assert report["skipped_title_rows"] == 1
    assert report["added"] == 1 and report["rejected"] == 0
    assert report["rows"][0]["line"] == 3 and report["rows"][0]["status"] == "ok"
    no = report["rows"][0]["member_no"]
    assert (await members(server))[no][0] == "140121100001"


async def test_year_month_dates_kept(server: Server) -> None:
    status, report = await post(server, (ROSTER / "yearmonth_dates.csv").read_bytes())
    assert status == 200 and report["added"] == 2 and report["rejected"] == 0
    assert await members(server) == {"19301": ("140121100001", "1965-03", "1990-07"),
                               "19302": ("140121100001", "1966-05", "1991-07")}


async def test_duplicate_names_both_lines(server: Server) -> None:
    status, report = await post(server, (ROSTER / "duplicates.csv").read_bytes())
    assert status == 200 and report["added"] == 1 and report["rejected"] == 1
    message = report["errors"][0]["message"]
    assert report["errors"][0]["row"] == 3
    assert "第 2 行" in message and "第 3 行" in message and message.index("重复") < message.index(" / ")
    name = await server.running.app[DB].read(lambda c: c.execute(
        text("SELECT name FROM members WHERE member_no = '19401'")).scalar_one())
    assert name == "陈一"


async def test_old_xls_is_read(server: Server) -> None:
    status, report = await post(server, (ROSTER / "old_format.xls").read_bytes())
    assert status == 200, report
    assert report["added"] == 1 and report["rows"][0]["member_no"] == "9501"
    assert (await members(server))["9501"] == ("140121100001", "1960-01-01", "1985-01-01")


async def test_full_width_digits_normalised(server: Server) -> None:
    body = HEADER + "１９７０１,全角,男,汉族,１９６０－０１－０２,,支部,１４０１２１１０００ ０１,正式党员,\n"
    status, report = await post(server, body.encode("utf-8"))
    assert status == 200 and report["added"] == 1, report
    assert await members(server) == {"19701": ("140121100001", "1960-01-02", None)}


async def test_dry_run_answers_row_by_row_and_stores_nothing(server: Server) -> None:
    body = (ROSTER / "duplicates.csv").read_bytes()
    status, report = await post(server, body, "?dry_run=1")
    assert status == 200 and report["dry_run"] is True
    assert (report["added"], report["updated"], report["rejected"]) == (1, 0, 1)
    assert [(r["line"], r["status"], r["name"]) for r in report["rows"]] == [
        (2, "ok", "陈一"), (3, "refused", "陈二")]
    assert report["rows_truncated"] is False
    assert await members(server) == {}
    status, real = await post(server, body)
    assert real["dry_run"] is False and real["added"] == 1
    status, again = await post(server, body, "?dry_run=1")
    assert (again["added"], again["updated"]) == (0, 1)
    status, _bad = await post(server, body, "?dry_run=２")
    assert status == 400


def bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (8 << 20))  # 8 MB in about 8 KB
    return buf.getvalue()


async def test_zip_bomb_refused_before_opening(server: Server) -> None:
    status, report = await post(server, await asyncio.to_thread(bomb))
    assert status == 422
    err = report["error"]
    assert err["code"] == "roster_too_big"
    assert "压缩比" in err["message"] and "zip bomb" in err["message_en"]


@pytest.mark.parametrize(("body", "says"), [
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, ".xls"),
    (None, ".ods"),
])
async def test_other_formats_named(server: Server, body: bytes | None, says: str) -> None:
    if body is None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
            z.writestr("content.xml", "<office:document-content/>")
        body = buf.getvalue()
    status, report = await post(server, body)
    assert status == 422
    err = report["error"]
    assert err["code"] == "bad_roster"
    assert says in err["message"] and says in err["message_en"] and ".xlsx" in err["message"]


async def run_cli(data: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "YUANJIAO_DATABASE_URL": database_url(data)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", *args, "--data-dir", str(data), cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_cli_dry_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out = await run_cli(data, "import-county", str(COUNTY))
    assert code == 0, out
    code, out = await run_cli(data, "import-members", "--dry-run",
                              str(ROSTER / "title_row_gbk.csv"))
    assert code == 0, out
    assert "试导入" in out and "将新增 1 人" in out and "跳过表头上方的标题行 1 行" in out
    async with Database(database_url(data) or sqlite_url(data / "yuanjiao.sqlite3"),
                        MIGRATIONS) as db:
        assert await db.read(lambda c: c.execute(text("SELECT COUNT(*) FROM members")).scalar_one()) == 0
    code, out = await run_cli(data, "import-members", str(ROSTER / "sci_notation.csv"))
    assert code == 1
    assert "第 2 行" in out and "科学计数法" in out and "Traceback" not in out

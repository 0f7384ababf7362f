"""Reports, the member learning record, flagged records and the roster, in Chromium.

- Reports: the period and the counting rule written on the page; coverage by township
  drawn as bars and the monthly trend as lines (Chart.js, shipped with the server);
  stations below the county rule listed and highlighted; village rows name their
  township; tables sort by a click on the header; CSV and XLSX downloads are real files.
- Member record: a search with several matches offers a choice; the record opens on its
  own page with hours and minutes written with units and the year's totals against the
  targets, printable on A4; a failed lookup looks like a failure, not like an empty record.
- Flagged records: an empty state where the server has none (or no such endpoint).
- Roster: uploading a roster file shows what was (or would be) imported.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.conftest import COUNTY, Server
from tests.console_helpers import SHOTS, browser, go, page, shoot  # noqa: F401
from tests.test_attendance import record, send

pytestmark = pytest.mark.asyncio
ROSTER = "序号,姓名,村代码\n900001,张三,140121100001\n900002,张三丰,140121100002\n900003,李四,140121100001\n"


async def seed(server: Server) -> None:
    async with server.http.post("/api/v1/admin/members/import", data=ROSTER.encode()) as r:
        assert r.status == 200
    now = datetime.now(UTC)
    recs = [record(["900001", "900003"], now - timedelta(days=d), watched=5400, seq=i + 1)
            for i, d in enumerate((1, 2, 3, 35, 36))]
    assert (await send(server, recs))[0] == 200


async def canvas_drawn(page: Page, selector: str) -> bool:
    return bool(await page.locator(selector).evaluate("""c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
        return false; }"""))


async def test_reports_charts_rule_tables_and_exports(page: Page, server: Server) -> None:
    await seed(server)
    await go(page, "reports")
    year = datetime.now(UTC).year
    rule = page.locator("#report-rule")
    await expect(rule).to_contain_text(f"统计期间：{year}-01-01 至")
    await expect(rule).to_contain_text("每月至少 2 场、20 学时")
    await expect(page.locator("#county-rate")).to_contain_text("全县受训率")
    assert await canvas_drawn(page, "#units-chart")
    assert await canvas_drawn(page, "#trend-chart")
    below = page.locator("#below-table tbody tr")
    await expect(below.first.locator("td.below").first).to_be_visible()
    await expect(page.locator("#below-table")).to_contain_text("清源镇")
    village = page.locator("#villages-table tbody tr", has_text="杜和庄村")
    await expect(village.locator("td").first).to_have_text("清源镇")  # the row names its township
    await expect(village).to_contain_text("100.0%")  # both members on its roster came
    header = page.locator("#villages-table th", has_text="受训率")
    await expect(header).to_have_attribute("aria-sort", "ascending")  # worst first
    await header.click()
    await expect(page.locator("#villages-table tbody tr").first).to_contain_text("100.0%")
    await expect(header).to_have_attribute("aria-sort", "descending")
    await shoot(page, "reports")
    async with page.expect_download() as info:
        await page.click("a.button:text('受训率 XLSX')")
    path = await (await info.value).path()
    assert Path(path).read_bytes()[:2] == b"PK"
    async with page.expect_download() as info:
        await page.click("a.button:text('站点月报 CSV')")
    text = Path(await (await info.value).path()).read_text("utf-8-sig")
    assert text.startswith("站点,村（社区）代码")


async def test_a_wrong_period_is_said_and_the_form_stays(page: Page, server: Server) -> None:
    await go(page, "reports")
    notice = page.locator("#notice.error")
    for first, last, said in [("2026-12-01", "2026-01-01", "结束日期早于开始日期"),
                              ("2026-02-30", "2026-03-31", "日历上有的日子"),
                              ("2020-01-01", "2026-11-30", "最长 36 个月")]:
        await page.fill("#report-from", first)
        await page.fill("#report-to", last)
        await page.click("#report-form button[type=submit]")
        await expect(notice).to_contain_text(said)
    # typed into the address: the server refuses it, the form stays to put it right
    await go(page, "reports/2020-01-01/2026-11-30")
    await expect(page.locator("[role=alert].failure")).to_contain_text("36")
    await expect(page.locator("#report-form")).to_be_visible()
    await shoot(page, "reports-period-refused")


async def test_member_search_record_and_failed_lookup(page: Page, server: Server) -> None:
    await seed(server)
    await go(page, "member")
    await page.fill("#member-query", "张三")
    await page.click("#member-form button[type=submit]")
    choices = page.locator("#member-choices li")
    await expect(choices).to_have_count(2)
    await expect(choices.first).to_contain_text("清源镇")
    await shoot(page, "member-choices")
    await choices.first.locator("a").click()
    rec = page.locator("#member-record")
    await expect(rec).to_contain_text("张三 的学习记录")
    await expect(rec.locator("#record-table tbody tr")).to_have_count(5)
    await expect(rec.locator("#record-table")).to_contain_text("1 小时 30 分钟")
    await expect(rec.locator("table.totals")).to_contain_text("目标")
    await expect(rec.locator("table.totals")).to_contain_text("次")
    await shoot(page, "member-record")
    await page.emulate_media(media="print")
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.pdf(path=str(SHOTS / "member-record-A4.pdf"), format="A4")
    await expect(page.locator("nav")).to_be_hidden()  # printing shows the record only
    await page.emulate_media(media="screen")

    await go(page, "member")
    await page.fill("#member-query", "不存在的人")
    await page.click("#member-form button[type=submit]")
    await expect(page.locator(".failure")).to_contain_text("没有找到")
    await go(page, "member/999999")
    failure = page.locator("[role=alert].failure")
    await expect(failure).to_contain_text("查不到序号 999999")
    await expect(page.locator("#member-record")).to_have_count(0)
    await shoot(page, "member-failed")


async def test_flagged_and_roster(page: Page, server: Server) -> None:
    await go(page, "flagged")
    await expect(page.locator("#screen-flagged .empty")).to_contain_text("没有需要确认的记录")
    await go(page, "roster")
    await page.set_input_files("#roster-file", str(COUNTY / "members-sample-gbk.csv"))
    await page.click("#roster-form button[type=submit]")
    preview = page.locator("#roster-preview")
    await expect(preview).not_to_be_empty()
    if await page.locator("#roster-import").count():  # a server with the dry run
        await page.click("#roster-import")
        await page.click("dialog#confirm button[value=ok]")
    await expect(preview).to_contain_text("已导入")
    await shoot(page, "roster")
    async with server.http.get("/api/v1/admin/members", params={"q": "陈红华"}) as r:
        assert (await r.json())["matches"]

"""The console of a province of counties, in Chromium.

- The province's account sees a 全省 screen: the province's coverage, terminals online
  and readiness, a table and a chart per county, a CSV export; a county known only by its
  code can be named there; distributing to every terminal is called 全省. From a county's
  row, or the picker in the header, it looks at one county: every screen then shows that
  county alone, until it picks 全省 again; with 全省 picked, the screens that list
  terminals, villages or sessions one by one ask for a county first. In a county
  deployment (one county) there is no such screen.
- A county's account sees its county's name beside its own, no 全省 in the menu, and every
  screen of its menu opens without an error, showing its county alone. It uploads films
  of its own: the library says whose each film is (本县 or 全省); it edits its own, and a
  film of the province's says who may change it, with no edit buttons. The province's
  account sees the county's film under that county's name and shares it with every
  county after a question.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Dialog, Page, expect

from tests import tusclient
from tests.conftest import ADMIN_PASSWORD, Server, add_account, admin_session, make_clip
from tests.console_helpers import browser, go, open_console, page, shoot  # noqa: F401
from tests.county_scope import HOME, OTHER, OTHER_TERMINALS, add_other_county, county_admin
from tests.test_fleet import T1, beat, heartbeat

pytestmark = pytest.mark.asyncio


async def test_no_province_screen_for_one_county(page: Page) -> None:
    await expect(page.locator("nav a[data-screen=library]")).to_be_visible()
    await expect(page.locator("nav a[data-screen=province]")).to_be_hidden()


async def test_province_screen(browser: Browser, server: Server) -> None:
    await add_other_county(server)
    async with server.http.put(f"/api/v1/admin/counties/{OTHER}", json={"name": "榆次区"}) as r:
        assert r.status == 200
    await beat(await server.as_terminal(T1), T1, heartbeat([]))
    page, errors = await open_console(browser, server)
    try:
        await expect(page.locator("#who-name")).to_contain_text("全省")
        await expect(page.locator("nav a[data-screen=province]")).to_be_visible()
        await go(page, "province")
        await expect(page.locator("#province-figures")).to_contain_text("在线站点 1 / 213")
        rows = page.locator("#counties-table tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0)).to_contain_text(HOME)
        await expect(rows.nth(0)).to_contain_text("未命名")
        await expect(rows.nth(1)).to_contain_text("榆次区")
        await expect(page.locator("#counties-chart")).to_be_visible()
        await shoot(page, "province")

        async def answer(d: Dialog) -> None:
            await d.accept("清徐县")

        await go(page, "distribution")  # "every terminal" is the province's here
        await expect(page.locator("fieldset.picker label.all")).to_contain_text("全省 Whole province")
        await go(page, "province")
        rows = page.locator("#counties-table tbody tr")
        page.once("dialog", answer)
        await rows.nth(0).locator("button", has_text="命名").click()
        await expect(page.locator("#counties-table tbody tr").nth(0)).to_contain_text("清徐县")
        await expect(page.locator("#counties-table tbody tr").nth(0)).not_to_contain_text("未命名")

        # looking at one county: its screens as its own account sees them
        await page.locator("#counties-table tbody tr").nth(1).locator("button", has_text="查看").click()
        await expect(page).to_have_url(re.compile(r"#/reports$"))
        await expect(page.locator("#county-view")).to_have_value(OTHER)
        await expect(page.locator("#county-view option:checked")).to_have_text(f"榆次区（{OTHER}）")
        await go(page, "fleet")
        await expect(page.locator("#fleet-table")).to_contain_text(OTHER_TERMINALS[0])
        await expect(page.locator("#fleet-table")).not_to_contain_text(T1)
        await shoot(page, "province-looking-at-county")
        await page.reload()  # kept for the visit
        await expect(page.locator("#county-view")).to_have_value(OTHER)
        await expect(page.locator("#fleet-table")).not_to_contain_text(T1)
        await page.select_option("#county-view", "")  # the whole province: pick a county here
        await expect(page.locator("#choose-county")).to_contain_text("请选择一个县")
        await expect(page.locator("#fleet-table")).to_have_count(0)
        await shoot(page, "province-choose-county")
        await page.locator("#choose-county button", has_text="清徐县").click()
        await expect(page.locator("#county-view")).to_have_value(HOME)
        await expect(page.locator("#fleet-table")).to_contain_text(T1)
    finally:
        await page.context.close()
    assert errors == [], errors


async def test_county_account_console(browser: Browser, server: Server, clip: Path,
                                      clip2: Path, tmp_path: Path) -> None:
    await add_other_county(server)
    up = await tusclient.upload(server.http, clip.read_bytes(), title="全省专题片")
    content_id = up.headers["Yuanjiao-Content-Id"]
    async with server.http.put(f"/api/v1/admin/counties/{HOME}", json={"name": "清徐县"}) as r:
        assert r.status == 200
    token = await add_account(server.running, "qingxu", county=HOME, password=ADMIN_PASSWORD)
    async with admin_session(server.running, token) as county_http:
        own = await tusclient.upload(county_http, clip2.read_bytes(), title="清徐葡萄栽培")
        own_id = own.headers["Yuanjiao-Content-Id"]
    neighbour = make_clip(tmp_path / "yangqu.mp4", seconds=3, tone=880)
    async with await county_admin(server, OTHER) as other_http:
        theirs = await tusclient.upload(other_http, neighbour.read_bytes(), title="阳曲红枣")
        assert theirs.status == 204
    async with server.http.post("/api/v1/admin/assignments", json={
            "content_id": content_id, "scope": "county"}) as r:  # to every county
        assert r.status == 201
    await beat(await server.as_terminal(T1), T1, heartbeat([]))
    await beat(await server.as_terminal(OTHER_TERMINALS[0]), OTHER_TERMINALS[0], heartbeat([]))
    page, errors = await open_console(browser, server, "qingxu")
    try:
        await expect(page.locator("#who-name")).to_contain_text("清徐县")
        await expect(page.locator("nav a[data-screen=province]")).to_be_hidden()
        await expect(page.locator("nav a[data-screen=upload]")).to_be_visible()  # its own films
        for screen in ("library", "upload", "distribution", "sessions", "readiness", "fleet",
                       "reports", "member", "flagged", "roster"):
            await go(page, screen)
            await expect(page.locator("#notice.error")).to_be_hidden()
            await expect(page.locator("#view .failure")).to_have_count(0)
            await shoot(page, f"county-{screen}")
        await go(page, "library")
        table = page.locator("#library-table")
        await expect(table.locator("tr", has_text="全省专题片")).to_contain_text("全省")
        await expect(table.locator("tr", has_text="清徐葡萄栽培")).to_contain_text("本县")
        await expect(table).not_to_contain_text("阳曲红枣")  # another county's own
        await page.wait_for_function(  # its account previews: posters and films load
            "() => [...document.querySelectorAll('#library-table img.thumb')]"
            ".every((i) => i.complete && i.naturalWidth > 0)")
        await go(page, f"library/{content_id}")
        await expect(page.locator("#view")).to_contain_text("全省专题片")
        await expect(page.locator("#edit-form")).to_have_count(0)
        await expect(page.locator("#province-content")).to_contain_text("修改或下架请找省级管理员")
        await shoot(page, "county-province-content")
        await go(page, f"library/{own_id}")
        await expect(page.locator("#owner")).to_contain_text("本县自己的内容")
        await expect(page.locator("#edit-form")).to_be_visible()
        await expect(page.locator("#retire")).to_be_visible()
        await expect(page.locator("#share")).to_have_count(0)  # the province's to decide
        await shoot(page, "county-own-content")
        await go(page, "distribution")  # and for a county's account, its county
        await expect(page.locator("fieldset.picker label.all")).to_contain_text("全县 Whole county")
        province_row = page.locator("#assignments-table tr", has_text="全省专题片")
        await expect(province_row).to_contain_text("省级分发")  # the province's to withdraw
        await expect(province_row.locator("button.withdraw")).to_have_count(0)
        await go(page, "upload")  # another county's own film, sent again: refused, no retry
        await page.set_input_files("#upload-files", [str(neighbour)])
        card = page.locator(".upload-card")
        await card.locator(".u-start").click()
        await expect(card.locator(".u-status")).to_contain_text("这个视频已是县 140122自己的内容《阳曲红枣》")
        await expect(card.locator(".u-status")).to_contain_text("设为全省共用")
        await expect(card.locator("button", has_text="重试")).to_be_hidden()
        await shoot(page, "county-upload-refused")
        await go(page, "fleet")
        await expect(page.locator("#fleet-table")).to_contain_text(T1)
        await expect(page.locator("#fleet-table")).not_to_contain_text(OTHER_TERMINALS[0])
    finally:
        await page.context.close()
    assert errors == [], errors

    page, errors = await open_console(browser, server)  # the province's account
    try:
        await go(page, "library")
        await expect(page.locator("#library-table tr", has_text="清徐葡萄栽培")).to_contain_text("清徐县")
        await go(page, f"library/{own_id}")
        await expect(page.locator("#owner")).to_contain_text("清徐县自己的内容")
        await page.click("#share")
        dialog = page.locator("dialog#confirm")
        await expect(dialog).to_contain_text("各县都能分发")
        await shoot(page, "province-share-dialog")
        await dialog.locator("button[value=ok]").click()
        await expect(page.locator("#owner")).to_contain_text("全省共用")
        await expect(page.locator("#share")).to_have_count(0)
    finally:
        await page.context.close()
    assert errors == [], errors
    async with server.http.get(f"/api/v1/admin/contents/{own_id}") as r:
        assert (await r.json())["county"] is None

"""The fleet screen as a county admin uses it in Chromium: terminals by state (online,
late, stopped reporting for days, never enrolled, revoked), the stopped ones first and
marked apart from those never installed; filter by state; enrollment codes for several
terminals at once, printed as slips with a QR code, and a slip's code really enrolls;
a terminal's own page with its figures and months; revoking asks first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import text

from server.appkeys import DB
from shared.timeutil import to_db
from tests.conftest import Server
from tests.console_helpers import DESKTOP, browser, go, page, shoot  # noqa: F401
from tests.test_attendance import record, send
from tests.test_fleet import beat, heartbeat

pytestmark = pytest.mark.asyncio
T1, T2, T3 = "T140121100001", "T140121100002", "T140121100003"


async def test_states_codes_slips_and_terminal_page(page: Page, server: Server) -> None:
    await beat(await server.as_terminal(T1), T1, heartbeat([]))
    assert (await send(server, [record([], datetime.now(UTC) - timedelta(days=1))]))[0] == 200
    await beat(await server.as_terminal(T2), T2, heartbeat([], clock=datetime.now(UTC) + timedelta(hours=1)))
    await server.as_terminal(T3)
    async with server.http.post(f"/api/v1/admin/terminals/{T3}/revoke") as r:
        assert r.status == 204
    three_days = to_db(datetime.now(UTC) - timedelta(days=3))
    await server.running.app[DB].write(lambda c: c.execute(
        text("UPDATE terminals SET last_seen = :seen WHERE id = :id"), {"seen": three_days, "id": T2}))

    await go(page, "fleet")
    chips = page.locator("#fleet-states")
    await expect(chips.locator("[data-state=online]")).to_have_text("在线 1")
    await expect(chips.locator("[data-state=offline_days]")).to_have_text("停止上报 1")
    await expect(chips.locator("[data-state=revoked]")).to_have_text("已吊销 1")
    await expect(chips.locator("[data-state=never]")).to_have_text("未安装/未登记 208")
    first = page.locator("#fleet-table tbody tr").first
    await expect(first).to_contain_text(T2)  # the stopped one comes first, marked apart
    await expect(first).to_contain_text("停止上报 3 天")
    await expect(first).to_have_class("st-stopped")
    await expect(first.locator("td.warn")).to_contain_text("快")  # its clock runs ahead
    await shoot(page, "fleet")
    await chips.locator("[data-state=never]").click()
    await expect(page.locator("#fleet-table tbody tr")).to_have_count(208)
    await chips.locator("[data-state=offline_days]").click()
    await expect(page.locator("#fleet-table tbody tr")).to_have_count(1)

    await chips.locator("[data-state=never]").click()
    await page.fill("#fleet-filter", "T14012110000")
    rows = page.locator("#fleet-table tbody tr")
    await expect(rows).to_have_count(6)  # 0004..0009
    await rows.nth(0).locator("input[type=checkbox]").check()
    await rows.nth(1).locator("input[type=checkbox]").check()
    await page.click("#make-codes")
    await expect(page.locator("dialog#confirm")).to_contain_text("2 个终端")
    await page.click("dialog#confirm button[value=ok]")
    slips = page.locator("#slips .slip")
    await expect(slips).to_have_count(2)
    assert await slips.first.locator("img.qr").evaluate("i => i.complete && i.naturalWidth > 50")
    await expect(slips.first).to_contain_text("清源镇")
    await shoot(page, "slips")
    await page.set_viewport_size(DESKTOP)  # each code whole inside its slip at office-PC width
    assert await slips.evaluate_all("els => els.every(s => s.scrollWidth <= s.clientWidth)")
    code = (await slips.first.locator(".slip-code").inner_text()).strip()
    terminal = (await slips.first.inner_text()).split("终端 ")[1][:13]
    async with server.http.post("/api/v1/enroll", json={"code": code}) as r:
        assert r.status == 201
        assert (await r.json())["terminal_id"] == terminal

    await go(page, f"terminal/{T1}")
    facts = page.locator("#terminal-facts")
    await expect(facts).to_contain_text("在线")
    await expect(facts).to_contain_text("0.1.0")
    await expect(page.locator("#screen-terminal")).to_contain_text("年各月")
    await expect(page.locator("#terminal-records tbody tr")).to_have_count(1)
    await expect(page.locator("#terminal-records")).to_contain_text("冬训")
    await shoot(page, "terminal")
    await page.click("#revoke")
    await expect(page.locator("dialog#confirm")).to_contain_text("立即失效")
    await page.click("dialog#confirm button[value=cancel]")
    async with (await server.as_terminal(T1)).get(f"/api/v1/terminals/{T1}/catalog") as r:
        assert r.status == 200  # answering no revoked nothing
    await page.click("#revoke")
    await page.click("dialog#confirm button[value=ok]")
    await expect(page.locator("#notice")).to_contain_text("已吊销")
    await expect(page.locator("#terminal-facts")).to_contain_text("已吊销")

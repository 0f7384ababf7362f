"""Distribution, sessions and readiness as a county admin does them in Chromium (the
browser set to New York time and an American locale; the page still speaks county time).

- Assign: contents ticked, a township and a village of another township ticked in the
  county tree, a "needed by" date (a past one is refused with a message); withdrawing
  asks first, saying how many terminals lose it; answering no keeps it.
- Sessions: a past start is refused; a future one is listed as YYYY-MM-DD HH:mm county
  time and stored in UTC; edit its time; cancel after a question; plan a series of three
  weekly sessions for a township; a past session shows its roll call with names.
- Readiness: per session, grouped by township, ready counts and what to do for the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from server.appkeys import DB
from server.queries import contents as cq
from tests import tusclient
from tests.conftest import Server
from tests.console_helpers import browser, go, page, shoot  # noqa: F401
from tests.test_attendance import record, send
from tests.test_fleet import beat, heartbeat

pytestmark = pytest.mark.asyncio


async def upload(server: Server, clip: Path, title: str) -> tuple[str, str]:
    r = await tusclient.upload(server.http, clip.read_bytes(), title=title)
    cid = r.headers["Yuanjiao-Content-Id"]
    async with server.http.get(f"/api/v1/admin/contents/{cid}") as g:
        return cid, str((await g.json())["sha256"])


async def test_assign_from_the_tree_and_withdraw(page: Page, server: Server, clip: Path) -> None:
    await upload(server, clip, "农技讲座")
    await go(page, "distribution")
    await page.check("#assign-contents input[type=checkbox]")
    await page.check("#assign-tree input[aria-label=清源镇]")
    other = page.locator("#assign-tree details.unit").nth(3)
    await other.locator("summary").click()
    village = other.locator("ul > li > label > input").first
    await village.check()
    await page.fill("#assign-needed", "2020-01-01")
    await page.click("#assign-form button[type=submit]")
    await expect(page.locator("#notice.error")).to_contain_text("已经过去")
    await page.fill("#assign-needed", "2030-06-30")
    await shoot(page, "distribution-picked")
    await page.click("#assign-form button[type=submit]")
    await expect(page.locator("#notice")).to_contain_text("已分发")
    rows = page.locator("#assignments-table tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.filter(has_text="清源镇").first).to_contain_text("2030-06-30")
    async with server.http.get("/api/v1/admin/assignments") as r:
        scopes = sorted(a["scope"] for a in await r.json())
    assert scopes == ["unit", "village"]
    await shoot(page, "distribution")

    await rows.filter(has_text="清源镇").locator("button.withdraw").click()
    dialog = page.locator("dialog#confirm")
    await expect(dialog).to_contain_text("30 个终端")
    await dialog.locator("button[value=cancel]").click()
    await expect(rows).to_have_count(2)
    await rows.filter(has_text="清源镇").locator("button.withdraw").click()
    await dialog.locator("button[value=ok]").click()
    await expect(page.locator("#notice")).to_contain_text("已撤回")
    await expect(page.locator("#assignments-table tbody tr")).to_have_count(1)


async def test_schedule_edit_cancel_and_series(page: Page, server: Server, clip: Path,
                                               clip2: Path) -> None:
    await upload(server, clip, "冬训第一讲")
    await upload(server, clip2, "冬训第二讲")
    await go(page, "sessions")
    await page.click("#session-form summary")
    await page.fill("#session-title", "冬训开班")
    await page.fill("#session-day", "2020-01-15")
    await page.fill("#session-time", "19:30")
    await page.check("#session-contents input >> nth=0")
    await page.check("#session-tree input[aria-label=清源镇]")
    await page.click("#session-form button[type=submit]")
    await expect(page.locator("#notice.error")).to_contain_text("已经过去")
    await page.fill("#session-day", "2030-01-15")
    await page.click("#session-form button[type=submit]")
    row = page.locator("#upcoming-table tbody tr", has_text="冬训开班")
    await expect(row).to_contain_text("2030-01-15 19:30")
    await expect(row).to_contain_text("等 30 个村")
    async with server.http.get("/api/v1/admin/sessions") as r:
        (stored,) = await r.json()
    assert stored["starts_at"].startswith("2030-01-15T11:30")  # 19:30 in the county is 11:30 UTC

    await row.locator("button.edit").click()
    await page.fill("#edit-session-time", "20:00")
    await page.click("#edit-session-form summary")
    await expect(page.locator("#edit-session-tree input[aria-label=清源镇]")).to_be_checked()
    await page.check("#edit-session-contents input >> nth=1")
    await page.click("#edit-session-form button[type=submit]")
    row = page.locator("#upcoming-table tbody tr", has_text="冬训开班")
    await expect(row).to_contain_text("2030-01-15 20:00")
    await expect(row).to_contain_text("冬训第二讲、冬训第一讲")  # a content added by editing

    await page.click("#series-form summary")
    await page.fill("#series-title", "冬训")
    await page.fill("#series-first", "2030-12-05")
    await page.fill("#series-count", "3")
    await page.fill("#series-every", "7")
    await page.click("#series-form button:text('生成日程')")
    await expect(page.locator(".series-row")).to_have_count(3)
    await expect(page.locator(".series-day").nth(2)).to_have_value("2030-12-19")
    await page.check("#series-tree input[aria-label=清源镇]")
    await shoot(page, "sessions-series")
    # a row without a name: nothing of the series is scheduled, the row's box is focused
    await page.locator(".series-name").nth(1).fill("  ")
    await page.click("#series-form button[type=submit]")
    await expect(page.locator("#notice.error")).to_contain_text("请填写场次名称")
    await expect(page.locator(".series-name").nth(1)).to_be_focused()
    async with server.http.get("/api/v1/admin/sessions") as r:
        assert len(await r.json()) == 1  # only 冬训开班
    await page.locator(".series-name").nth(1).fill("冬训第2课")
    await page.click("#series-form button[type=submit]")
    await expect(page.locator("#upcoming-table tbody tr")).to_have_count(4)
    await expect(page.locator("#upcoming-table")).to_contain_text("2030-12-12 19:30")
    await shoot(page, "sessions")

    row = page.locator("#upcoming-table tbody tr", has_text="冬训开班")
    await row.locator("button.cancel").click()
    await expect(page.locator("dialog#confirm")).to_contain_text("30 个村")
    await page.click("dialog#confirm button[value=ok]")
    await expect(page.locator("#notice")).to_contain_text("已取消")
    await expect(page.locator("#upcoming-table tbody tr")).to_have_count(3)


async def test_past_session_roll_call(page: Page, server: Server, clip: Path) -> None:
    cid, _ = await upload(server, clip, "党课")
    started = datetime.now(UTC) - timedelta(days=2)
    sid = await server.running.app[DB].write(
        lambda c: cq.add_session(c, "十月党课", started, [cid], ["140121100001"]))
    body = "序号,姓名,村代码\n900001,张三,140121100001\n900002,李四,140121100001\n"
    async with server.http.post("/api/v1/admin/members/import", data=body.encode()) as r:
        assert r.status == 200
    rec = record(["900001", "900002"], started, watched=3000)
    rec["session_id"] = sid
    assert (await send(server, [rec]))[0] == 200
    await go(page, "sessions")
    await page.locator("#past-table tbody tr", has_text="十月党课").locator("a").click()
    await expect(page.locator("#roll-table")).to_contain_text("张三、李四")
    await expect(page.locator("#roll-table")).to_contain_text("50 分钟")
    await shoot(page, "roll-call")


async def test_readiness_grouped_by_township(page: Page, server: Server, clip: Path) -> None:
    cid, sha = await upload(server, clip, "冬训内容")
    starts = datetime.now(UTC) + timedelta(days=2)
    async with server.http.post("/api/v1/admin/sessions", json={
            "title": "冬训第一课", "starts_at": starts.isoformat(), "content_ids": [cid],
            "village_codes": ["140121100001", "140121100002"]}) as r:
        assert r.status == 201
    t1 = await server.as_terminal("T140121100001")
    await beat(t1, "T140121100001", heartbeat([{"sha256": sha, "state": "ready", "bytes_present": 1}]))
    await go(page, "readiness")
    block = page.locator(".session-readiness")
    await expect(block).to_contain_text("就绪 1/2")
    await expect(block.locator(".unit-readiness h4")).to_have_text("清源镇：就绪 1/2")
    await block.locator(".ready-list summary").click()
    await expect(block.locator(".ready-list")).to_contain_text("杜和庄村（T140121100001）")
    row = block.locator("tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("冬训内容")  # the missing item by title
    await expect(row).to_contain_text("KB")  # bytes left
    await expect(row).to_contain_text("从未上线")  # what to do
    await shoot(page, "readiness")

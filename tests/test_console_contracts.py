"""The console against API contracts that other parts of the server are adding now.

Where this server does not answer them yet, the browser's requests for exactly those
paths are answered with bodies of the agreed shape (everything else is the real server):
- errors `{"error": {code, message (Chinese), message_en}}`: message shown, then message_en;
- `GET /api/v1/admin/attendance/flagged` and `POST .../{terminal}/{record}/confirm`:
  the records listed with their reasons in Chinese; confirming sends the chosen county
  time as UTC;
- `POST /api/v1/admin/members/import?dry_run=1` → rows shown before the real import;
- the fleet's `server_disk_full` → a banner on every screen; `clock_problem` flagged.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.async_api import Page, Route, expect

from tests.conftest import COUNTY, Server
from tests.console_helpers import browser, go, page, shoot  # noqa: F401

pytestmark = pytest.mark.asyncio
FLAGGED = {"records": [{
    "terminal_id": "T140121100001", "record_id": "r-1", "village_code": "140121100001",
    "village_name": "杜和庄村", "title": "冬训", "started_at": None, "ended_at": None,
    "reported_started_at": "2026-11-20T11:30:00Z", "received_at": "2026-11-21T02:00:00Z",
    "watched_seconds": 3600, "attendees": 12, "reasons": ["clock_unconfirmed", "not_on_roster"],
}]}


async def test_flagged_records_listed_and_confirmed(page: Page) -> None:
    confirmed: list[dict[str, Any]] = []

    async def flagged(route: Route) -> None:
        if route.request.method == "POST":
            confirmed.append(json.loads(route.request.post_data or "{}"))
            await route.fulfill(status=204)
        else:
            await route.fulfill(json=FLAGGED)

    await page.route("**/api/v1/admin/attendance/flagged**", flagged)
    await go(page, "flagged")
    row = page.locator("#flagged-table tbody tr")
    await expect(row).to_contain_text("终端时钟未确认、有人不在名册上")
    await expect(row).to_contain_text("2026-11-20 19:30")  # reported start, county time
    await shoot(page, "flagged")
    await row.locator("button.confirm-record").click()
    await page.fill("#flagged-time", "19:00")
    await page.click("dialog#confirm button[value=ok]")
    await expect(page.locator("#notice")).to_contain_text("已确认")
    assert confirmed == [{"started_at": "2026-11-20T11:00:00.000Z"}]


async def test_errors_with_message_en_and_disk_banner(page: Page, server: Server) -> None:
    async def refuse(route: Route) -> None:
        await route.fulfill(status=422, json={"error": {
            "code": "in_the_past", "message": "开始时间已经过去", "message_en": "starts in the past"}})

    await page.route("**/api/v1/admin/sessions", lambda r: refuse(r) if r.request.method == "POST"
                     else r.continue_())
    await page.route("**/api/v1/admin/contents", lambda r: r.fulfill(json=[{
        "id": "c1", "sha256": "a" * 64, "size": 1, "title": "片", "kind": "lecture",
        "description": "", "original_filename": "", "duration_seconds": 1, "container": "mp4",
        "video_codec": "h264", "audio_codec": None, "width": None, "height": None,
        "poster_sha256": None, "poster_size": None, "created_at": "2026-01-01T00:00:00Z"}]))
    await go(page, "sessions")
    await page.click("#session-form summary")
    await page.fill("#session-title", "x")
    await page.fill("#session-day", "2030-01-01")
    await page.check("#session-contents input")
    await page.check("#session-tree input[aria-label=清源镇]")
    await page.click("#session-form button[type=submit]")
    notice = page.locator("#notice.error")
    await expect(notice).to_contain_text("开始时间已经过去")
    await expect(notice.locator(".en")).to_have_text("starts in the past")

    async def full(route: Route) -> None:
        response = await route.fetch()
        body = await response.json()
        body.update(server_disk_full=True, server_free_bytes=0)
        body["terminals"][0]["clock_problem"] = True
        await route.fulfill(response=response, json=body)

    await page.route("**/api/v1/admin/fleet", full)
    await go(page, "fleet")
    await expect(page.locator("#banner")).to_contain_text("服务器磁盘已满")
    await page.fill("#fleet-filter", "T140121001001")
    await expect(page.locator("#fleet-table tbody tr td.warn")).to_have_count(1)  # clock problem
    await go(page, "library")
    await expect(page.locator("#banner")).to_be_visible()
    await shoot(page, "disk-full")


async def test_roster_preview_then_import(page: Page, server: Server) -> None:
    calls: list[str] = []

    async def dry_run(route: Route) -> None:
        calls.append(route.request.url)
        if "dry_run=1" not in route.request.url:
            await route.continue_()
            return
        await route.fulfill(json={
            "dry_run": True, "added": 0, "updated": 0, "rejected": 1, "errors": [],
            "skipped_title_rows": 1, "rows_truncated": False,
            "rows": [{"line": 3, "member_no": "1", "name": "陈红华", "village_code": "140121100001",
                      "status": "ok", "message": ""},
                     {"line": 4, "member_no": "2", "name": "李娜", "village_code": "999",
                      "status": "refused", "message": "没有这个村代码 999"}]})

    await page.route("**/api/v1/admin/members/import**", dry_run)
    await go(page, "roster")
    await page.set_input_files("#roster-file", str(COUNTY / "members-sample-gbk.csv"))
    await page.click("#roster-form button[type=submit]")
    rows = page.locator("#roster-rows tbody tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#roster-rows td.below")).to_contain_text("拒绝")
    await expect(page.locator("#roster-preview")).to_contain_text("跳过标题行 1 行")
    await shoot(page, "roster-preview")
    async with server.http.get("/api/v1/admin/members", params={"q": "陈红华"}) as r:
        assert (await r.json())["matches"] == []  # the preview imported nothing
    await page.click("#roster-import")
    await page.click("dialog#confirm button[value=ok]")
    await expect(page.locator("#roster-preview")).to_contain_text("已导入")
    async with server.http.get("/api/v1/admin/members", params={"q": "陈红华"}) as r:
        assert (await r.json())["matches"]
    assert len(calls) == 2

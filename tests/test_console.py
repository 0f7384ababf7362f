"""The county console in real headless Chromium: an admin logs in, uploads a video
through the page (tus from the browser), sees it listed with its poster, assigns it to
the county, sees the fleet and the coverage report, and gets a readable message for a
bad file; a viewer can read but has no forms; a wrong password is refused."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import ADMIN_PASSWORD, Server, add_account

pytestmark = pytest.mark.asyncio
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (scripts/setup installs it)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        await b.close()


async def log_in(p: Page, username: str, password: str) -> None:
    await p.fill("#login-user", username)
    await p.fill("#login-password", password)
    await p.click("#login-form button[type=submit]")
    await expect(p.locator("#who-name")).to_contain_text(username)


@pytest.fixture
async def page(browser: Browser, server: Server) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    p = await context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    await p.goto(server.url + "/")
    await log_in(p, "admin", ADMIN_PASSWORD)
    yield p
    await context.close()
    assert errors == [], errors


async def test_upload_assign_and_see_reports(page: Page, server: Server, clip: Path,
                                             tmp_path: Path) -> None:
    await expect(page.locator("h1")).to_contain_text("远教内容服务器")
    await page.set_input_files("#upload-file", str(clip))
    await page.fill("#upload-title", "网页上传：党课样片")
    await page.select_option("#upload-kind", "lecture")
    await page.click("#upload-button")
    row = page.locator("#contents-table tbody tr", has_text="网页上传：党课样片")
    await expect(row).to_have_count(1, timeout=30_000)
    await expect(row).to_contain_text("党课/讲座")
    await expect(page.locator("#notice")).to_contain_text("已上传")
    poster_loaded = await row.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    assert poster_loaded
    await page.screenshot(path=str(tmp_path / "contents.png"), full_page=True)

    await page.click("nav button[data-tab=distribution]")
    await page.select_option("#assign-scope", "county")
    await page.click("#assign-form button[type=submit]")
    await expect(page.locator("#assignments-table tbody tr")).to_contain_text("全县")
    t1 = await server.as_terminal("T140121100001")
    async with t1.get("/api/v1/terminals/T140121100001/catalog") as r:
        assert "网页上传：党课样片" in await r.text()

    await page.click("nav button[data-tab=fleet]")
    await expect(page.locator("#fleet-summary")).to_have_text("在线 online 0 / 211")
    await page.fill("#fleet-filter", "T140121100001")
    await expect(page.locator("#fleet-table tbody tr")).to_have_count(1)
    await page.click("#fleet-table tbody tr button.code")
    await expect(page.locator("#notice")).to_contain_text("登记码")
    code = (await page.inner_text("#notice")).split("enrollment code: ")[1][:19]
    async with server.http.post("/api/v1/enroll", json={"code": code}) as r:
        assert r.status == 201  # the code the admin read off the console works
        assert (await r.json())["terminal_id"] == "T140121100001"

    await page.click("nav button[data-tab=reports]")
    await expect(page.locator("#coverage-table tbody tr").first).to_contain_text("全县")
    href = await page.get_attribute("#coverage-csv", "href")
    assert href is not None and "format=csv" in href


async def test_bad_file_gets_a_readable_message(page: Page, server: Server, tmp_path: Path) -> None:
    fake = tmp_path / "film.mp4"
    fake.write_bytes("这不是视频\n".encode() * 200)
    await page.set_input_files("#upload-file", str(fake))
    await page.click("#upload-button")
    await expect(page.locator("#notice")).to_contain_text("上传失败", timeout=30_000)
    await expect(page.locator("#notice")).to_contain_text("文件无法读取为视频")
    await expect(page.locator("#contents-table tbody tr")).to_have_count(0)


async def test_schedule_a_session(page: Page, server: Server, clip: Path) -> None:
    from tests import tusclient
    await tusclient.upload(server.http, clip.read_bytes(), title="冬训内容")
    await page.click("nav button[data-tab=sessions]")
    await page.fill("#session-title", "冬训第一课")
    await page.fill("#session-start", "2030-01-15T19:30")
    await page.select_option("#session-contents", label="冬训内容")
    await page.select_option("#session-units", label="清源镇（30）")
    await page.click("#session-form button[type=submit]")
    summary = page.locator("#readiness summary")
    await expect(summary).to_contain_text("冬训第一课")
    await expect(summary).to_contain_text("2030/1/15 19:30")
    async with server.http.get("/api/v1/admin/sessions") as r:
        sessions = await r.json()
    assert sessions[0]["starts_at"].startswith("2030-01-15T11:30")  # 19:30 in the county is 11:30 UTC
    assert len(sessions[0]["villages"]) == 30  # every terminal point of 清源镇


async def test_login_refused_and_viewer_reads_only(browser: Browser, server: Server) -> None:
    await add_account(server.running, "viewer1", "viewer", "viewer-password-1")
    context = await browser.new_context(locale="zh-CN")
    p = await context.new_page()
    await p.goto(server.url + "/")
    await p.fill("#login-user", "admin")
    await p.fill("#login-password", "wrong password")
    await p.click("#login-form button[type=submit]")
    await expect(p.locator("#notice")).to_contain_text("用户名或密码不对")  # Chinese first
    await expect(p.locator("nav")).to_be_hidden()
    await log_in(p, "viewer1", "viewer-password-1")
    await expect(p.locator("#who-name")).to_contain_text("只读")
    await expect(p.locator("#upload-form")).to_be_hidden()
    await expect(p.locator("#contents-table")).to_be_visible()
    cookies = await context.cookies()
    session = next(c for c in cookies if c["name"] == "yj_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    await p.click("#logout")
    await expect(p.locator("#login-form")).to_be_visible()
    await context.close()

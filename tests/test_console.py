"""The console's frame in real headless Chromium: log in and out, the menu, errors in
Chinese first (English second) whatever the server sent, county dates whatever the
browser's locale and zone, read-only viewers see no write button on any screen, and
no screen scrolls sideways at 390 px (each screen is shot at 1366×768 and 390×844)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import Server, add_account
from tests.console_helpers import browser, go, open_console, page, shoot  # noqa: F401

pytestmark = pytest.mark.asyncio
SCREENS = ["library", "upload", "distribution", "sessions", "readiness", "fleet", "reports",
           "member", "flagged", "roster"]


async def test_every_screen_renders_and_fits_a_phone(page: Page) -> None:
    for screen in SCREENS:
        await go(page, screen)
        await expect(page.locator(f"nav a[data-screen={screen}]")).to_have_class("active")
        await shoot(page, f"screen-{screen}")


async def test_login_refused_in_chinese_then_logout(browser: Browser, server: Server) -> None:
    context = await browser.new_context(locale="en-US")
    p = await context.new_page()
    await p.goto(server.url + "/")
    await p.fill("#login-user", "admin")
    await p.fill("#login-password", "wrong password")
    await p.click("#login-form button[type=submit]")
    notice = p.locator("#notice.error")
    await expect(notice).to_contain_text("登录失败")
    await expect(notice).to_contain_text("用户名或密码不对")  # Chinese, from the server's code table
    await expect(notice.locator(".en")).to_contain_text("password")  # the server's English after
    await expect(p.locator("nav")).to_be_hidden()
    await shoot(p, "login-refused")
    cookies = await context.cookies()
    assert not any(c["name"] == "yj_session" for c in cookies)
    await context.close()


async def test_viewer_sees_no_write_button(browser: Browser, server: Server, clip: Path) -> None:
    from tests import tusclient
    r = await tusclient.upload(server.http, clip.read_bytes(), title="只读可见")
    content_id = r.headers["Yuanjiao-Content-Id"]
    await add_account(server.running, "viewer1", "viewer", "viewer-password-1")
    p, errors = await open_console(browser, server, "viewer1", "viewer-password-1")
    await expect(p.locator("#who-name")).to_contain_text("只读")
    await expect(p.locator("nav a[data-screen=upload]")).to_be_hidden()
    await expect(p.locator("nav a[data-screen=roster]")).to_be_hidden()
    for screen in ["library", f"library/{content_id}", "distribution", "sessions", "fleet",
                   "readiness", "upload", "roster", "flagged"]:
        await go(p, screen)
        view = p.locator("#view")
        await expect(view.locator("form:not(#report-form):not(#member-form)")).to_have_count(0)
        await expect(view.locator("button.danger, button.primary, a.button.primary")).to_have_count(0)
        await expect(view.locator("input[type=checkbox]")).to_have_count(0)
    await go(p, f"library/{content_id}")
    await expect(p.locator("#preview")).to_be_visible()  # reading is allowed
    await shoot(p, "viewer-content")
    await p.click("#logout")
    await expect(p.locator("#login-form")).to_be_visible()
    await p.context.close()
    assert errors == [], errors

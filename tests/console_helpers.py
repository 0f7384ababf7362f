"""Fixtures and helpers for the console tests in real headless Chromium.

The browser runs with an American locale and a New York time zone on purpose: the
console must show county time (Asia/Shanghai) as YYYY-MM-DD HH:mm whatever the browser
says. `shoot()` saves a screenshot of the screen at 1366×768 and at 390×844 under
test-artifacts/screenshots/ (gitignored) and fails if the phone width scrolls sideways.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import ADMIN_PASSWORD, REPO, Server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--autoplay-policy=no-user-gesture-required"]
SHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS", REPO / "test-artifacts" / "screenshots"))
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


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


async def open_console(browser: Browser, server: Server, username: str = "admin",
                       password: str = ADMIN_PASSWORD) -> tuple[Page, list[str]]:
    context = await browser.new_context(locale="en-US", timezone_id="America/New_York",
                                        viewport=DESKTOP, accept_downloads=True)
    p = await context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    await p.goto(server.url + "/")
    await log_in(p, username, password)
    return p, errors


@pytest.fixture
async def page(browser: Browser, server: Server) -> AsyncIterator[Page]:
    """The console logged in as the county admin, at 1366×768."""
    p, errors = await open_console(browser, server)
    yield p
    await p.context.close()
    assert errors == [], errors


async def go(p: Page, screen: str) -> None:
    """Open a screen by its address, and wait until it has rendered."""
    await p.evaluate("""h => { if (location.hash === h) dispatchEvent(new HashChangeEvent('hashchange'));
                               else location.hash = h; }""", "#/" + screen)
    name = screen.split("/")[0]
    await expect(p.locator(f"#view section#screen-{name}")).to_be_visible()


async def shoot(p: Page, name: str) -> None:
    """Screenshots at office-PC and phone size; at the phone size nothing may stick out
    sideways (the page's scroll width stays within the viewport)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = p.viewport_size or DESKTOP
    await p.evaluate("window.scrollTo(0, 0)")
    await p.set_viewport_size(DESKTOP)
    await p.screenshot(path=str(SHOTS / f"{name}-1366.png"), full_page=False)
    await p.set_viewport_size(PHONE)
    await p.wait_for_timeout(50)  # one layout pass for charts that listen to resize
    overflow = await p.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    await p.screenshot(path=str(SHOTS / f"{name}-390.png"), full_page=False)
    await p.set_viewport_size(size)
    assert overflow <= 0, f"{name}: the page scrolls sideways by {overflow}px at 390 px"

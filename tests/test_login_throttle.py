"""Login throttling across addresses, kept in the database.

Contract:
* wrong passwords for one account from many addresses (each below the per-address
  limit) lock the account: every login without a known device gets 429
  `account_locked` with Retry-After, the right password included, and no password is
  checked while the lock holds;
* a browser that logged in to the account before (its device cookie) still logs in
  with the right password while the lock holds; it is still held to the per-address
  limit, and changing the password makes it unknown;
* the lock grows: each lock that follows soon after the last lasts twice as long, up to
  the maximum; after a quiet spell it starts short again;
* the state lives in the database: a restart does not forgive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text

from server.appkeys import DB
from server.auth import secrets
from server.auth.throttle import LoginThrottle, ThrottlePolicy
from server.db import Database, sqlite_url
from server.migrations import MIGRATIONS
from server.queries import auth as aq
from server.runner import RunningServer
from shared.timeutil import utcnow
from tests.conftest import ADMIN_PASSWORD, add_account, database_url, server_config

pytestmark = pytest.mark.asyncio
OFFICE = "10.14.0.10"


def browser(running: RunningServer) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(running.url, cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(http: aiohttp.ClientSession, address: str, password: str = ADMIN_PASSWORD,
                username: str = "admin") -> tuple[int, dict[str, object], str | None]:
    async with http.post("/api/v1/auth/login", json={"username": username, "password": password},
                         headers={"X-Forwarded-For": address}) as r:
        return r.status, await r.json(), r.headers.get("Retry-After")


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningServer]:
    config = server_config(tmp_path, trust_proxy=True, login_max_failures=3,
                           login_account_max_failures=8, login_account_lock_seconds=60.0)
    async with RunningServer(config) as running:
        await add_account(running)
        yield running


async def test_attack_from_many_addresses_locks_account_but_not_the_office(
        running: RunningServer) -> None:
    async with browser(running) as office, browser(running) as attacker, \
            browser(running) as new_browser:
        status, _, _ = await login(office, OFFICE)
        assert status == 200  # the admin's browser is now known to the account
        for i in range(8):  # two wrong passwords each from four addresses: never 3 from one
            status, _, _ = await login(attacker, f"203.0.113.{i // 2}", password=f"guess{i}")
            assert status == 401
        # Locked for everyone else, right password or not, from anywhere.
        for http, address in [(attacker, "198.51.100.7"), (new_browser, OFFICE)]:
            status, body, retry = await login(http, address)
            assert status == 429, body
            error = body["error"]
            assert isinstance(error, dict) and error["code"] == "account_locked"
            assert "锁定" in error["message"] and "locked" in error["message_en"]
            assert retry is not None and 50 <= int(retry) <= 60
        # The known browser at the office logs in.
        status, body, _ = await login(office, OFFICE)
        assert status == 200, body
        # It is no free pass: three wrong passwords from it and its address is throttled.
        for _ in range(3):
            assert (await login(office, OFFICE, password="typo"))[0] == 401
        status, body, _ = await login(office, OFFICE)
        assert status == 429
        error = body["error"]
        assert isinstance(error, dict) and error["code"] == "too_many_requests"


async def test_no_password_is_checked_while_locked(running: RunningServer) -> None:
    async with browser(running) as attacker:
        for i in range(8):
            assert (await login(attacker, f"203.0.113.{i}", password="nope"))[0] == 401
        # Many more tries, spread over addresses: all refused, none counted or checked.
        for i in range(20):
            assert (await login(attacker, f"198.51.100.{i}", password="nope"))[0] == 429
    failures = await running.app[DB].read(lambda c: c.execute(text(
        "SELECT CAST(SUM(failures) AS BIGINT) FROM login_failures WHERE name = 'admin'"
    )).scalar_one())
    assert failures == 8


async def test_lock_survives_restart_and_password_change_forgets_devices(tmp_path: Path) -> None:
    config = server_config(tmp_path, trust_proxy=True, login_account_max_failures=4)
    jar = aiohttp.CookieJar(unsafe=True)  # the office browser's cookies, kept across restarts
    async with RunningServer(config) as running:
        await add_account(running)
        async with aiohttp.ClientSession(running.url, cookie_jar=jar) as office:
            assert (await login(office, OFFICE))[0] == 200
            for i in range(4):
                assert (await login(office, f"203.0.113.{i}", password="nope"))[0] == 401
    async with RunningServer(config) as running:  # same data directory
        async with browser(running) as fresh:
            assert (await login(fresh, OFFICE))[0] == 429
        async with aiohttp.ClientSession(running.url, cookie_jar=jar) as office:
            assert (await login(office, OFFICE))[0] == 200
            hashed = await secrets.hash_password("a new password")
            await running.app[DB].write(lambda c: aq.set_password(c, "admin", hashed, utcnow()))
            status, body, _ = await login(office, OFFICE, password="a new password")
            assert status == 429, body  # the device was forgotten with the old password


def _url(tmp_path: Path) -> str:
    return database_url(tmp_path) or sqlite_url(tmp_path / "db.sqlite3")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def test_lock_grows_then_starts_short_again(tmp_path: Path) -> None:
    clock = Clock()
    policy = ThrottlePolicy(max_failures=100, cooldown=300, account_max_failures=3,
                            account_lock=60, account_lock_max=240)
    async with Database(_url(tmp_path), MIGRATIONS) as db:
        throttle = LoginThrottle(db, policy, clock=clock)

        async def lock_length() -> int:
            for i in range(3):
                assert await throttle.refusal("Admin", f"a{i}") is None
                await throttle.failed("Admin", f"a{i}")
            refusal = await throttle.refusal("admin", "elsewhere")
            assert refusal is not None and refusal.account_locked
            assert await throttle.refusal("admin", "elsewhere", known_device=True) is None
            return refusal.seconds

        assert await lock_length() == 60
        clock.advance(61)
        assert await lock_length() == 120
        clock.advance(121)
        assert await lock_length() == 240
        clock.advance(241)
        assert await lock_length() == 240  # the maximum
        clock.advance(241 + 241)  # quiet for longer than the longest lock
        assert await lock_length() == 60


async def test_per_address_limit_and_cooldown(tmp_path: Path) -> None:
    clock = Clock()
    policy = ThrottlePolicy(max_failures=2, cooldown=30, account_max_failures=100,
                            account_lock=60, account_lock_max=240)
    async with Database(_url(tmp_path), MIGRATIONS) as db:
        throttle = LoginThrottle(db, policy, clock=clock)
        await throttle.failed("admin", "10.0.0.1")
        await throttle.failed("admin", "10.0.0.1")
        refusal = await throttle.refusal("admin", "10.0.0.1", known_device=True)
        assert refusal is not None and not refusal.account_locked and refusal.seconds == 30
        assert await throttle.refusal("admin", "10.0.0.2") is None
        clock.advance(31)
        assert await throttle.refusal("admin", "10.0.0.1") is None
        await throttle.failed("admin", "10.0.0.1")  # a new run of failures starts at one
        assert await throttle.refusal("admin", "10.0.0.1") is None

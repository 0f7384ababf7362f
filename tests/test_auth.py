"""Admin accounts: argon2 passwords, a console session cookie (HttpOnly, SameSite,
Secure behind TLS), CSRF protection on every state-changing console request, login
throttling (429, then the right password works again after the cool-down), roles
(admin, read-only viewer), and API tokens (shown once, stored hashed, revocable) that
tus clients send as Bearer."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp
import pytest

from server.runner import RunningServer
from tests import tusclient
from tests.conftest import (
    ADMIN_PASSWORD,
    REPO,
    Server,
    add_account,
    admin_session,
    database_url,
    server_config,
)

pytestmark = pytest.mark.asyncio


def browser_session(server: Server) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(server.url, cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(http: aiohttp.ClientSession, username: str = "admin",
                password: str = ADMIN_PASSWORD, **headers: str) -> aiohttp.ClientResponse:
    async with http.post("/api/v1/auth/login", json={"username": username, "password": password},
                         headers=headers) as r:
        await r.read()
        return r


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/admin/contents"), ("GET", "/api/v1/admin/fleet"),
    ("POST", "/api/v1/admin/assignments"), ("GET", "/api/v1/admin/reports/coverage"),
    ("POST", "/api/v1/uploads"), ("GET", "/api/v1/auth/session"),
])
async def test_admin_endpoints_need_credentials(server: Server, method: str, path: str) -> None:
    async with aiohttp.ClientSession(server.url) as anonymous, \
            anonymous.request(method, path, headers=tusclient.TUS) as r:
        assert r.status == 401
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await r.json())["error"]["code"] == "unauthorized"


async def test_public_endpoints_stay_open(server: Server) -> None:
    async with aiohttp.ClientSession(server.url) as anonymous:
        for path in ["/", "/static/js/app.js", "/static/vendor/tus.min.js", "/api/v1/server",
                     "/api/v1/openapi.json"]:
            async with anonymous.get(path) as r:
                assert r.status == 200, path
        async with anonymous.options("/api/v1/uploads") as r:
            assert r.status == 204


async def test_cookie_flags_and_csrf(server: Server) -> None:
    async with browser_session(server) as http:
        r = await login(http)
        assert r.status == 200
        cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        csrf = (await r.json())["csrf_token"]
        body = {"content_id": "x", "scope": "county"}
        async with http.post("/api/v1/admin/assignments", json=body) as w:
            assert w.status == 403 and (await w.json())["error"]["code"] == "csrf"
        async with http.post("/api/v1/admin/assignments", json=body,
                             headers={"X-CSRF-Token": "forged"}) as w:
            assert w.status == 403
        async with http.post("/api/v1/admin/assignments", json=body,
                             headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"}) as w:
            assert w.status == 403
        async with http.post("/api/v1/admin/assignments", json=body,
                             headers={"X-CSRF-Token": csrf}) as w:
            assert w.status == 422  # past the guard: the content does not exist
        async with http.get("/api/v1/admin/contents") as g:
            assert g.status == 200  # reads need no token
        async with http.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}) as out:
            assert out.status == 204
        async with http.get("/api/v1/admin/contents") as g:
            assert g.status == 401


async def test_secure_cookie_behind_tls_proxy(tmp_path: Path) -> None:
    async with RunningServer(server_config(tmp_path, trust_proxy=True)) as running:
        await add_account(running)
        async with aiohttp.ClientSession(running.url) as http:
            r = await login(http, **{"X-Forwarded-Proto": "https"})
            assert r.status == 200 and "Secure" in r.headers["Set-Cookie"]


async def test_login_throttled_then_works_after_cooldown(tmp_path: Path) -> None:
    config = server_config(tmp_path, login_max_failures=3, login_cooldown_seconds=1.0)
    async with RunningServer(config) as running:
        await add_account(running)
        async with aiohttp.ClientSession(running.url) as http:
            for _ in range(3):
                assert (await login(http, password="wrong")).status == 401
            refused = await login(http)
            assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
            assert (await login(http, username="ADMIN")).status == 429  # names are case-blind
            await asyncio.sleep(1.1)  # the cool-down is the behaviour under test
            assert (await login(http)).status == 200


async def test_unknown_user_and_wrong_password_look_alike(server: Server) -> None:
    async with aiohttp.ClientSession(server.url) as http:
        a, b = await login(http, "nobody"), await login(http, "admin", "wrong")
        assert a.status == b.status == 401


async def test_viewer_reads_only(server: Server, clip: Path) -> None:
    token = await add_account(server.running, "viewer1", "viewer", "viewer-password-1")
    async with admin_session(server.running, token) as viewer:
        async with viewer.get("/api/v1/admin/fleet") as r:
            assert r.status == 200
        async with viewer.post("/api/v1/admin/assignments",
                               json={"content_id": "x", "scope": "county"}) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "read_only"
        r2 = await tusclient.create(viewer, 100, title="t")
        assert r2.status == 403


async def test_api_tokens_shown_once_and_revocable(server: Server, clip: Path) -> None:
    async with server.http.post("/api/v1/admin/tokens", json={"name": "县办上传脚本"}) as r:
        assert r.status == 201
        made = await r.json()
    assert made["token"].startswith("yja_") and len(made["token"]) > 40
    async with server.http.get("/api/v1/admin/tokens") as r:
        listed = await r.text()
    assert made["token"] not in listed and "县办上传脚本" in listed
    async with admin_session(server.running, made["token"]) as script:
        r = await tusclient.upload(script, clip.read_bytes(), title="脚本上传")
        assert r.status == 204
    async with server.http.delete(f"/api/v1/admin/tokens/{made['id']}") as r:
        assert r.status == 204
    async with admin_session(server.running, made["token"]) as script, \
            script.get("/api/v1/admin/contents") as r:
        assert r.status == 401
    async with aiohttp.ClientSession(server.url, headers={"Authorization": "Basic YTpi"}) as other, \
            other.get("/api/v1/admin/contents") as r:
        assert r.status == 401


async def cli(data: Path, *args: str, stdin: str = "") -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "admin", *args, "--data-dir", str(data), cwd=REPO,
        env={**os.environ, "YUANJIAO_DATABASE_URL": database_url(data)},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_cli_accounts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out = await cli(data, "create", "zhang", "--password-stdin", stdin="short\n")
    assert code == 1 and "at least 10" in out
    code, out = await cli(data, "create", "zhang", "--password-stdin", stdin="first-password\n")
    assert code == 0, out
    code, out = await cli(data, "create", "zhang", "--password-stdin", stdin="first-password\n")
    assert code == 1 and "exists" in out
    config = server_config(tmp_path, data_dir=data)
    async with RunningServer(config) as running, aiohttp.ClientSession(running.url) as http:
        assert (await login(http, "zhang", "first-password")).status == 200
        code, out = await cli(data, "reset", "zhang", "--password-stdin", stdin="second-password\n")
        assert code == 0, out
        async with http.get("/api/v1/auth/session") as r:
            assert r.status == 401  # the reset ended the session
        assert (await login(http, "zhang", "first-password")).status == 401
        assert (await login(http, "zhang", "second-password")).status == 200
        code, token = await cli(data, "token", "zhang", "--name", "backup")
        assert code == 0
        async with admin_session(running, token.strip()) as script, \
                script.get("/api/v1/admin/contents") as r:
            assert r.status == 200

"""Terminal enrollment and scopes: an admin makes a single-use, expiring code (stored
hashed); the terminal trades it for its id, a 256-bit token and the signing key; the
token reaches only that terminal's own endpoints and the blobs; admin endpoints stay
closed to it; revoking gives 401 from then on; tokens rotate without downtime."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.appkeys import DB, TOKENS
from server.auth import secrets
from server.auth.token_cache import TokenCache
from server.queries.revocations import revocation_mark
from server.runner import RunningServer
from shared import signing
from tests import tusclient
from tests.conftest import Server, add_account, admin_session, seed_county, server_config

pytestmark = pytest.mark.asyncio
T1, T2 = "T140121100001", "T140121100002"


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Server]:
    config = server_config(tmp_path)
    async with RunningServer(config) as running:
        await seed_county(running)
        token = await add_account(running)
        async with admin_session(running, token) as http:
            yield Server(running, http)


async def make_code(server: Server, terminal: str, **body: Any) -> str:
    async with server.http.post(f"/api/v1/admin/terminals/{terminal}/enrollment", json=body) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["code"])


async def enroll(server: Server, code: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession(server.url) as anonymous, \
            anonymous.post("/api/v1/enroll", json={"code": code, "software_version": "0.1.0"}) as r:
        return r.status, await r.json()


def as_terminal(server: Server, token: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(server.url, headers={"Authorization": f"Bearer {token}"})


async def test_enroll_and_use_own_endpoints_only(guarded: Server, clip: Path) -> None:
    code = await make_code(guarded, T1)
    assert len(code.replace("-", "")) == 16 and code.replace("-", "").isdigit()
    status, enrolled = await enroll(guarded, code.replace("-", " "))  # typed with spaces
    assert status == 201
    assert enrolled["terminal_id"] == T1 and enrolled["village_code"] == "140121100001"
    token = enrolled["token"]
    assert token.startswith("yjt_") and len(token) >= 40
    async with guarded.http.get("/api/v1/server") as r:
        info = await r.json()
    assert enrolled["public_key"] == info["public_key"]
    assert signing.fingerprint(signing.load_public_key(enrolled["public_key"])) == enrolled["key_fingerprint"]
    # The code works once.
    assert (await enroll(guarded, code))[0] == 401

    up = await tusclient.upload(guarded.http, clip.read_bytes(), title="片")
    sha = up.headers["Yuanjiao-Sha256"]
    async with as_terminal(guarded, token) as t:
        async with t.get(f"/api/v1/terminals/{T1}/catalog") as r:
            assert r.status == 200
        async with t.get(f"/api/v1/terminals/{T1}/roster") as r:
            assert r.status == 200
        async with t.get(f"/blobs/{sha}") as r:
            assert r.status == 200 and hashlib.sha256(await r.read()).hexdigest() == sha
        for method, path in [("GET", f"/api/v1/terminals/{T2}/catalog"),
                             ("POST", f"/api/v1/terminals/{T2}/heartbeat"),
                             ("POST", f"/api/v1/terminals/{T2}/attendance")]:
            async with t.request(method, path, json={}) as r:
                assert r.status == 403, path
                assert (await r.json())["error"]["code"] == "wrong_terminal"
        for path in ["/api/v1/admin/contents", "/api/v1/admin/fleet"]:
            async with t.get(path) as r:
                assert r.status == 401, path
        r2 = await tusclient.create(t, 100, title="x")
        assert r2.status == 401


async def test_no_token_no_entry(guarded: Server, clip: Path) -> None:
    up = await tusclient.upload(guarded.http, clip.read_bytes(), title="片")
    async with aiohttp.ClientSession(guarded.url) as anonymous:
        async with anonymous.get(f"/api/v1/terminals/{T1}/catalog") as r:
            assert r.status == 401
        async with anonymous.get(f"/blobs/{up.headers['Yuanjiao-Sha256']}") as r:
            assert r.status == 401
    async with as_terminal(guarded, "yjt_forged") as t, t.get(f"/api/v1/terminals/{T1}/catalog") as r:
        assert r.status == 401
    async with guarded.http.get(f"/blobs/{up.headers['Yuanjiao-Sha256']}") as r:
        assert r.status == 200  # admins may fetch blobs


async def test_expired_and_replaced_codes(guarded: Server) -> None:
    expired = await make_code(guarded, T1, expires_in_hours=1e-9)
    assert (await enroll(guarded, expired))[0] == 401
    first = await make_code(guarded, T1)
    second = await make_code(guarded, T1)
    assert (await enroll(guarded, first))[0] == 401  # replaced by the newer code
    assert (await enroll(guarded, second))[0] == 201
    async with guarded.http.post("/api/v1/admin/terminals/T404/enrollment", json={}) as r:
        assert r.status == 404


async def test_wrong_codes_are_throttled(tmp_path: Path) -> None:
    config = server_config(tmp_path, login_max_failures=3)
    async with RunningServer(config) as running, aiohttp.ClientSession(running.url) as http:
        await seed_county(running)
        server = Server(running, http)
        for _ in range(3):
            assert (await enroll(server, "0000-0000-0000-0000"))[0] == 401
        status, body = await enroll(server, "0000-0000-0000-0001")
        assert status == 429 and body["error"]["code"] == "too_many_requests"


async def test_revoked_terminal_gets_401(guarded: Server) -> None:
    _, enrolled = await enroll(guarded, await make_code(guarded, T1))
    async with as_terminal(guarded, enrolled["token"]) as t, \
            t.get(f"/api/v1/terminals/{T1}/catalog") as r:
        assert r.status == 200  # used once, so the server remembers the token
    async with guarded.http.post(f"/api/v1/admin/terminals/{T1}/revoke") as r:
        assert r.status == 204
    async with as_terminal(guarded, enrolled["token"]) as t, \
            t.get(f"/api/v1/terminals/{T1}/catalog") as r:
        assert r.status == 401
        assert (await r.json())["error"]["code"] == "terminal_revoked"
    # A new code brings the (replaced) box back.
    status, again = await enroll(guarded, await make_code(guarded, T1))
    assert status == 201
    async with as_terminal(guarded, again["token"]) as t, \
            t.get(f"/api/v1/terminals/{T1}/catalog") as r:
        assert r.status == 200


async def test_token_rotation_without_downtime(guarded: Server) -> None:
    _, enrolled = await enroll(guarded, await make_code(guarded, T1))
    old = enrolled["token"]
    async with as_terminal(guarded, old) as t, t.post(f"/api/v1/terminals/{T1}/token") as r:
        assert r.status == 201
        new = (await r.json())["token"]
    assert new != old
    for token in (old, new):  # both work while the new one is being stored
        async with as_terminal(guarded, token) as t, \
                t.get(f"/api/v1/terminals/{T1}/roster") as r:
            assert r.status == 200


async def test_only_a_token_made_invalid_changes_the_revocation_mark(guarded: Server) -> None:
    """Other server processes forget their remembered tokens when the mark changes: a
    revocation, a re-enrolment or a rotation must change it; a first enrolment must not
    (it made every process look up every token of the province again)."""
    db = guarded.running.app[DB]

    async def mark() -> tuple[object, ...]:
        return await db.read(revocation_mark)

    _, first = await enroll(guarded, await make_code(guarded, T1))
    before = await mark()
    assert (await enroll(guarded, await make_code(guarded, T2)))[0] == 201
    assert await mark() == before  # a new terminal: no token of anyone's became invalid
    async with as_terminal(guarded, first["token"]) as t, t.post(f"/api/v1/terminals/{T1}/token") as r:
        assert r.status == 201
    rotated = await mark()
    assert rotated != before  # the old token now ends
    assert (await enroll(guarded, await make_code(guarded, T1)))[0] == 201
    enrolled_again = await mark()
    assert enrolled_again != rotated  # the box replaced: its tokens revoked
    async with guarded.http.post(f"/api/v1/admin/terminals/{T2}/revoke") as r:
        assert r.status == 204
    assert await mark() != enrolled_again


async def test_a_started_process_knows_the_live_tokens(tmp_path: Path) -> None:
    """A process remembers every live token from its start (a fleet coming back to a
    restarted server is not a token look-up per terminal); not a revoked one."""
    config = server_config(tmp_path)
    async with RunningServer(config) as running:
        await seed_county(running)
        token = await add_account(running)
        async with admin_session(running, token) as http:
            server = Server(running, http)
            tokens = {t: (await enroll(server, await make_code(server, t)))[1]["token"]
                      for t in (T1, T2)}
            async with http.post(f"/api/v1/admin/terminals/{T2}/revoke") as r:
                assert r.status == 204
    async with RunningServer(config) as again:
        cache = again.app[TOKENS]
        assert cache.get(secrets.digest(tokens[T1])) == T1
        assert cache.get(secrets.digest(tokens[T2])) is None
        fresh = TokenCache(recheck=0.0)  # reads the mark at every validate
        assert await fresh.preload(again.app[DB]) == 1
        await fresh.validate(again.app[DB])  # the mark read with the tokens still holds
        assert fresh.get(secrets.digest(tokens[T1])) == T1


async def test_remembered_token_ends_with_the_token() -> None:
    """A token lookup is remembered for minutes, never past the token's own end."""
    cache = TokenCache(ttl=600.0)
    cache.put("live", T1)
    cache.put("ending", T1, lasts=0.0)  # an old token whose grace ends now
    assert cache.get("live") == T1
    assert cache.get("ending") is None

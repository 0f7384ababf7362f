"""Distribution: assignments to the county, a township, a village or one terminal, and
scheduled sessions. A terminal's catalog holds exactly what it must, is signed with the
server's Ed25519 key, carries a version and an ETag, and answers 304 when unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared import signing
from shared.protocol import Catalog, SignedCatalog
from tests import tusclient
from tests.conftest import Server

pytestmark = pytest.mark.asyncio

# Two villages of 清源镇 (unit 140121100), one of 徐沟镇 (unit 140121101).
V1, V2, V_OTHER_UNIT = "140121100001", "140121100002", "140121101001"
T1, T2, T3 = f"T{V1}", f"T{V2}", f"T{V_OTHER_UNIT}"


async def add_content(server: Server, clip: Path, title: str) -> tuple[str, str]:
    r = await tusclient.upload(server.http, clip.read_bytes(), title=title)
    assert r.status == 204
    return r.headers["Yuanjiao-Content-Id"], r.headers["Yuanjiao-Sha256"]


async def assign(server: Server, content_id: str, scope: str, target: str = "",
                 needed_by: datetime | None = None) -> str:
    body: dict[str, object] = {"content_id": content_id, "scope": scope, "target": target}
    if needed_by:
        body["needed_by"] = needed_by.isoformat()
    async with server.http.post("/api/v1/admin/assignments", json=body) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["id"])


async def fetch(server: Server, terminal_id: str, etag: str | None = None
                ) -> tuple[int, Catalog | None, str, SignedCatalog | None]:
    headers = {"If-None-Match": etag} if etag else {}
    http = await server.as_terminal(terminal_id)
    async with http.get(f"/api/v1/terminals/{terminal_id}/catalog", headers=headers) as r:
        if r.status == 304:
            return 304, None, r.headers["ETag"], None
        assert r.status == 200, await r.text()
        env = msgspec.json.decode(await r.read(), type=SignedCatalog)
        return 200, msgspec.json.decode(env.catalog, type=Catalog), r.headers["ETag"], env


async def server_key(server: Server) -> Ed25519PublicKey:
    async with server.http.get("/api/v1/server") as r:
        info = await r.json()
    key = signing.load_public_key(info["public_key"])
    assert signing.fingerprint(key) == info["key_fingerprint"]
    return key


async def test_scopes_reach_exactly_the_right_terminals(server: Server, clip: Path, clip2: Path,
                                                        tmp_path: Path) -> None:
    county_c, county_sha = await add_content(server, clip, "全县专题片")
    unit_c, unit_sha = await add_content(server, clip2, "清源镇讲座")
    await assign(server, county_c, "county")
    await assign(server, unit_c, "unit", "140121100")
    from tests.conftest import make_clip
    village_c, village_sha = await add_content(
        server, make_clip(tmp_path / "v.mp4", seconds=2, tone=300), "村级技术课")
    await assign(server, village_c, "village", V1)
    term_c, term_sha = await add_content(
        server, make_clip(tmp_path / "t.mp4", seconds=2, tone=350), "单站内容")
    await assign(server, term_c, "terminal", T2)

    def shas(c: Catalog | None) -> set[str]:
        assert c is not None
        return {i.sha256 for i in c.items}

    assert shas((await fetch(server, T1))[1]) == {county_sha, unit_sha, village_sha}
    assert shas((await fetch(server, T2))[1]) == {county_sha, unit_sha, term_sha}
    assert shas((await fetch(server, T3))[1]) == {county_sha}


async def test_catalog_is_signed_and_verifies(server: Server, clip: Path) -> None:
    c, _ = await add_content(server, clip, "专题片")
    await assign(server, c, "county")
    key = await server_key(server)
    _, catalog, _, env = await fetch(server, T1)
    assert env is not None and catalog is not None
    assert signing.verify(key, bytes(env.catalog), env.signature)
    assert env.key_fingerprint == signing.fingerprint(key)
    tampered = bytes(env.catalog).replace(b'"size":', b'"size":1')
    assert not signing.verify(key, tampered, env.signature)
    assert catalog.terminal_id == T1 and catalog.village_code == V1
    assert catalog.expires_at > catalog.generated_at
    item = catalog.items[0]
    assert item.title == "专题片" and item.size == clip.stat().st_size
    assert item.poster_sha256 is not None


async def test_etag_304_and_version_moves_on(server: Server, clip: Path, clip2: Path) -> None:
    c1, _ = await add_content(server, clip, "一")
    await assign(server, c1, "county")
    status, cat1, etag, _ = await fetch(server, T1)
    assert status == 200 and cat1 is not None
    assert (await fetch(server, T1, etag))[0] == 304
    c2, _ = await add_content(server, clip2, "二")
    await assign(server, c2, "village", V1)
    status, cat2, etag2, _ = await fetch(server, T1, etag)
    assert status == 200 and cat2 is not None
    assert etag2 != etag and cat2.version > cat1.version
    # A change for another village leaves this terminal's catalog as it was.
    await assign(server, c2, "village", V2)
    assert (await fetch(server, T1, etag2))[0] == 304


async def test_unchanged_poll_needs_no_database(server: Server, clip: Path) -> None:
    """The commonest request of a fleet, a poll whose catalog did not change, is answered
    from memory: no statement reaches the database."""
    from sqlalchemy import event

    from server.appkeys import CATALOGS, DB

    server.running.app[CATALOGS].recheck = 3600.0  # however slow this machine is today
    c1, _ = await add_content(server, clip, "一")
    await assign(server, c1, "county")
    _, _, etag, _ = await fetch(server, T1)
    await fetch(server, T1, etag)  # the version is now fresh in memory
    engine = server.running.app[DB]._read_engine
    assert engine is not None
    seen: list[str] = []

    def count(_c: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert (await fetch(server, T1, etag))[0] == 304
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert seen == []


async def test_sessions_and_needed_by_order(server: Server, clip: Path, clip2: Path) -> None:
    c1, sha1 = await add_content(server, clip, "晚些需要")
    c2, sha2 = await add_content(server, clip2, "冬训第一课内容")
    await assign(server, c1, "county", needed_by=datetime.now(UTC) + timedelta(days=20))
    starts = datetime.now(UTC) + timedelta(days=2)
    async with server.http.post("/api/v1/admin/sessions", json={
        "title": "冬训第一课", "starts_at": starts.isoformat(), "content_ids": [c2],
        "village_codes": [V1],
    }) as r:
        assert r.status == 201
        session_id = (await r.json())["id"]
    _, cat, _, _ = await fetch(server, T1)
    assert cat is not None
    assert [i.sha256 for i in cat.items] == [sha2, sha1]  # needed sooner comes first
    assert len(cat.sessions) == 1
    s = cat.sessions[0]
    assert (s.session_id, s.title, s.items) == (session_id, "冬训第一课", [sha2])
    assert abs((s.starts_at - starts).total_seconds()) < 1
    _, other, _, _ = await fetch(server, T2)
    assert other is not None and other.sessions == []
    async with server.http.delete(f"/api/v1/admin/sessions/{session_id}") as r:
        assert r.status == 204
    _, cat, _, _ = await fetch(server, T1)
    assert cat is not None and cat.sessions == [] and [i.sha256 for i in cat.items] == [sha1]


async def test_withdrawn_assignment_leaves_catalog(server: Server, clip: Path) -> None:
    c, _ = await add_content(server, clip, "撤回")
    a = await assign(server, c, "county")
    async with server.http.delete(f"/api/v1/admin/assignments/{a}") as r:
        assert r.status == 204
    _, cat, _, _ = await fetch(server, T1)
    assert cat is not None and cat.items == []


async def test_unknown_terminal_cannot_enroll(server: Server) -> None:
    async with server.http.post("/api/v1/admin/terminals/T999/enrollment", json={}) as r:
        assert r.status == 404


@pytest.mark.parametrize(("body", "status"), [
    ({"content_id": "nope", "scope": "county"}, 422),
    ({"content_id": "{c}", "scope": "village", "target": "999"}, 422),
    ({"content_id": "{c}", "scope": "unit"}, 422),
    ({"content_id": "{c}", "scope": "planet"}, 422),
    ({"content_id": "{c}", "scope": "county", "needed_by": "tomorrow"}, 422),
    ({"content_id": "{c}", "scope": "county", "needed_by": "2030-12-01T10:00:00"}, 422),
])
async def test_bad_assignments(server: Server, clip: Path, body: dict[str, str], status: int) -> None:
    c, _ = await add_content(server, clip, "x")
    body = {k: v.format(c=c) for k, v in body.items()}
    async with server.http.post("/api/v1/admin/assignments", json=body) as r:
        assert r.status == status
        assert (await r.json())["error"]["message"]
    async with server.http.get("/api/v1/admin/assignments") as r:
        assert await r.json() == []


async def test_bad_session_stores_nothing(server: Server, clip: Path) -> None:
    c, _ = await add_content(server, clip, "x")
    async with server.http.post("/api/v1/admin/sessions", json={
        "title": "t", "starts_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(), "content_ids": [c],
        "village_codes": [V1, "000"],
    }) as r:
        assert r.status == 422
        assert "000" in (await r.json())["error"]["message"]
    async with server.http.get("/api/v1/admin/sessions") as r:
        assert await r.json() == []

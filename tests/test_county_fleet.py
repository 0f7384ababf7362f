"""A county's account is kept inside its county on the fleet and terminal-point endpoints.

With a second county (140122) beside the sample one (140121):
- units and villages: a county's account lists its own alone; `?unit=` of another
  county's township lists nothing, as an unknown township does;
- registering a terminal point in another county's village is refused exactly as in an
  unknown village (422 unknown_village), and nothing is stored;
- the fleet shows its county's terminals alone, with its county's total and online count;
- readiness shows the sessions held in its villages, and in each only its terminals;
- an enrollment code for, or the revocation of, another county's terminal answers 404 as
  for an unknown terminal, and the terminal keeps working;
- a USB bundle names another county's terminal as unknown and never carries it (chosen
  by id, township or as offline); returns on a stick from another county's terminal are
  refused as from an unknown terminal, nothing of them stored, however often tried.
The province's account sees and does all of it for both counties, as before. On SQLite
and on PostgreSQL alike.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Connection, text

from server.appkeys import DB
from shared import bundle as b
from shared.protocol import Heartbeat
from tests import tusclient
from tests.conftest import Server, serve, server_config
from tests.county_scope import (
    HOME,
    OTHER,
    OTHER_TERMINALS,
    OTHER_UNIT,
    OTHER_VILLAGES,
    add_other_county,
    county_admin,
)
from tests.test_fleet import beat, heartbeat

pytestmark = pytest.mark.asyncio
HOME_T1, HOME_T2 = "T140121100001", "T140121100002"
HOME_TERMINALS = 211  # in the sample county


async def get(http: aiohttp.ClientSession, path: str) -> Any:
    async with http.get(path) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def refusal(r: aiohttp.ClientResponse, thing: str) -> tuple[int, str, str]:
    """(status, code, English message with `thing` taken out): what must not tell
    another county's thing from one that does not exist."""
    err = (await r.json())["error"]
    return r.status, err["code"], err["message_en"].replace(thing, "…")


async def test_units_and_villages(server: Server) -> None:
    await add_other_county(server)
    async with await county_admin(server, HOME) as http:
        units = await get(http, "/api/v1/admin/units")
        assert units and all(u["code"].startswith(HOME) for u in units)
        villages = await get(http, "/api/v1/admin/villages")
        assert villages and all(v["code"].startswith(HOME) for v in villages)
        assert await get(http, f"/api/v1/admin/villages?unit={OTHER_UNIT}") == []
        assert await get(http, "/api/v1/admin/villages?unit=140121999") == []  # unknown: alike
        assert await get(http, "/api/v1/admin/villages?unit=140121100")  # its own township
    async with await county_admin(server, OTHER) as http:
        units = await get(http, "/api/v1/admin/units")
        assert [(u["code"], u["villages"]) for u in units] == [(OTHER_UNIT, 2)]
        villages = await get(http, "/api/v1/admin/villages")
        assert [(v["code"], v["terminals"]) for v in villages] == [(c, 1) for c in OTHER_VILLAGES]
    units = {u["code"] for u in await get(server.http, "/api/v1/admin/units")}
    assert OTHER_UNIT in units and "140121100" in units
    assert len(await get(server.http, f"/api/v1/admin/villages?unit={OTHER_UNIT}")) == 2


def _terminal_exists(c: Connection, terminal_id: str) -> bool:
    return c.execute(text("SELECT 1 FROM terminals WHERE id = :id"),
                     {"id": terminal_id}).first() is not None


async def test_register_terminal_points(server: Server) -> None:
    await add_other_county(server)
    db = server.running.app[DB]
    async with await county_admin(server, HOME) as http:
        async with http.post("/api/v1/admin/terminals",
                             json={"village_code": OTHER_VILLAGES[0], "id": "TX-OTHER"}) as r:
            foreign = await refusal(r, OTHER_VILLAGES[0])
        async with http.post("/api/v1/admin/terminals",
                             json={"village_code": "140121999999", "id": "TX-NONE"}) as r:
            unknown = await refusal(r, "140121999999")
        assert foreign == unknown and foreign[:2] == (422, "unknown_village")
        assert not await db.read(lambda c: _terminal_exists(c, "TX-OTHER"))
        async with http.post("/api/v1/admin/terminals",
                             json={"village_code": "140121100001", "id": "TX-HOME"}) as r:
            assert r.status == 201, await r.text()
    async with server.http.post("/api/v1/admin/terminals",
                                json={"village_code": OTHER_VILLAGES[0], "id": "TX-OTHER"}) as r:
        assert r.status == 201, await r.text()  # the province registers anywhere
    assert await db.read(lambda c: _terminal_exists(c, "TX-OTHER"))


async def test_fleet(server: Server) -> None:
    await add_other_county(server)
    await beat(await server.as_terminal(HOME_T1), HOME_T1, heartbeat([]))
    await beat(await server.as_terminal(OTHER_TERMINALS[0]), OTHER_TERMINALS[0], heartbeat([]))
    async with await county_admin(server, HOME) as http:
        got = await get(http, "/api/v1/admin/fleet")
        ids = {t["id"] for t in got["terminals"]}
        assert (got["total"], got["online"], len(ids)) == (HOME_TERMINALS, 1, HOME_TERMINALS)
        assert HOME_T1 in ids and not ids & set(OTHER_TERMINALS)
    async with await county_admin(server, OTHER) as http:
        got = await get(http, "/api/v1/admin/fleet")
        assert (got["total"], got["online"]) == (2, 1)
        assert [t["id"] for t in got["terminals"]] == list(OTHER_TERMINALS)
        assert got["terminals"][0]["online"] and got["terminals"][0]["unit_code"] == OTHER_UNIT
    got = await get(server.http, "/api/v1/admin/fleet")
    assert (got["total"], got["online"]) == (HOME_TERMINALS + 2, 2)


async def test_readiness(server: Server, clip: Path) -> None:
    await add_other_county(server)
    up = await tusclient.upload(server.http, clip.read_bytes(), title="冬训第一课")
    sha, content_id = up.headers["Yuanjiao-Sha256"], up.headers["Yuanjiao-Content-Id"]
    starts = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    sessions = {"both": [HOME_T1[1:], OTHER_VILLAGES[0]], "home": [HOME_T2[1:]],
                "other": [OTHER_VILLAGES[1]]}
    for title, villages in sessions.items():
        async with server.http.post("/api/v1/admin/sessions", json={
                "title": title, "starts_at": starts, "content_ids": [content_id],
                "village_codes": villages}) as r:
            assert r.status == 201, await r.text()
    await beat(await server.as_terminal(HOME_T1), HOME_T1,
               heartbeat([{"sha256": sha, "state": "ready", "bytes_present": 1}]))

    def seen(got: list[dict[str, Any]]) -> dict[str, tuple[int, int, list[str]]]:
        return {s["title"]: (s["ready"], s["total"], [t["terminal_id"] for t in s["terminals"]])
                for s in got}

    async with await county_admin(server, HOME) as http:
        assert seen(await get(http, "/api/v1/admin/readiness")) == {
            "both": (1, 1, [HOME_T1]), "home": (0, 1, [HOME_T2])}
    async with await county_admin(server, OTHER) as http:
        assert seen(await get(http, "/api/v1/admin/readiness")) == {
            "both": (0, 1, [OTHER_TERMINALS[0]]), "other": (0, 1, [OTHER_TERMINALS[1]])}
    assert seen(await get(server.http, "/api/v1/admin/readiness")) == {
        "both": (1, 2, [HOME_T1, OTHER_TERMINALS[0]]), "home": (0, 1, [HOME_T2]),
        "other": (0, 1, [OTHER_TERMINALS[1]])}


async def test_enrollment_and_revocation(server: Server) -> None:
    await add_other_county(server)
    theirs = OTHER_TERMINALS[0]
    their_box = await server.as_terminal(theirs)  # enrolled by the province
    async with await county_admin(server, HOME) as http:
        for action, ok in (("enrollment", 201), ("revoke", 204)):
            async with http.post(f"/api/v1/admin/terminals/{theirs}/{action}") as r:
                foreign = await refusal(r, theirs)
            async with http.post(f"/api/v1/admin/terminals/T140121999999/{action}") as r:
                unknown = await refusal(r, "T140121999999")
            assert foreign == unknown and foreign[0] == 404, action
            async with http.post(f"/api/v1/admin/terminals/{HOME_T1}/{action}") as r:
                assert r.status == ok, await r.text()
    await beat(their_box, theirs, heartbeat([]))  # neither revoked nor re-coded
    async with server.http.post(f"/api/v1/admin/terminals/{theirs}/revoke") as r:
        assert r.status == 204
    async with their_box.post(f"/api/v1/terminals/{theirs}/heartbeat", json=heartbeat([])) as r:
        assert r.status == 401


# --- USB bundles -------------------------------------------------------------------------


async def _enroll_with_key(http: aiohttp.ClientSession, terminal_id: str) -> Ed25519PrivateKey:
    """Enroll a terminal point as a box that signs its USB returns; returns its key."""
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    async with http.post(f"/api/v1/admin/terminals/{terminal_id}/enrollment", json={}) as r:
        assert r.status == 201, await r.text()
        code = (await r.json())["code"]
    async with http.post("/api/v1/enroll", json={"code": code, "public_key": public.decode()}) as r:
        assert r.status == 201, await r.text()
    return key


def _put_state(stick: Path, terminal_id: str, key: Ed25519PrivateKey) -> str:
    """A signed state return of `terminal_id` on the stick; its name in a returns report."""
    now = datetime.now(UTC)
    record = b.ReturnRecord(kind="state", terminal_id=terminal_id, written_at=now,
                            state=Heartbeat(software_version="0.1.0", terminal_clock=now,
                                            disk_free=1 << 30, disk_total=8 << 30))
    path = b.returns_dir(stick, terminal_id) / "state-1.json"
    b.write_atomic(path, b.sign_return(key, record))
    return str(path.relative_to(b.root(stick)))


async def _post(http: aiohttp.ClientSession, path: str, body: dict[str, Any]
                ) -> tuple[int, dict[str, Any]]:
    async with http.post(path, json=body) as r:
        return r.status, dict(await r.json())


def _usb_trace(c: Connection, terminal_id: str) -> tuple[int, str | None]:
    """(return files recorded from it, its last contact by stick)."""
    returns = c.execute(text("SELECT COUNT(*) FROM usb_returns WHERE terminal_id = :id"),
                        {"id": terminal_id}).scalar_one()
    contact = c.execute(text("SELECT last_usb_contact FROM terminals WHERE id = :id"),
                        {"id": terminal_id}).scalar_one()
    return int(returns), contact


async def test_usb_bundles_and_returns(tmp_path: Path) -> None:
    async with serve(server_config(tmp_path, usb_mount_roots=(str(tmp_path),)),
                     seed=True) as (running, province):
        server = Server(running, province)
        await add_other_county(server)
        theirs, ours = OTHER_TERMINALS[0], HOME_T1
        their_key = await _enroll_with_key(province, theirs)
        our_key = await _enroll_with_key(province, ours)
        stick = tmp_path / "stick"
        stick.mkdir()
        write = "/api/v1/admin/bundles"
        async with await county_admin(server, HOME) as http:
            status, got = await _post(http, write, {"directory": str(stick),
                                                    "terminals": [theirs, ours]})
            assert status == 200, got
            assert got["terminals"] == [ours] and got["skipped_terminals"] == {theirs: "unknown terminal"}
            assert not b.catalog_path(stick, theirs).exists()
            status, foreign = await _post(http, write, {"directory": str(stick), "terminals": [theirs]})
            status2, unknown = await _post(http, write, {"directory": str(stick),
                                                         "terminals": ["T140121999999"]})
            assert (status, foreign["error"]["code"]) == (status2, unknown["error"]["code"]) == (
                422, "bundle_refused")
            assert (foreign["error"]["message_en"].replace(theirs, "…")
                    == unknown["error"]["message_en"].replace("T140121999999", "…"))
            status, foreign = await _post(http, write, {"directory": str(stick),
                                                        "township": OTHER_UNIT})
            _, unknown = await _post(http, write, {"directory": str(stick), "township": "140121999"})
            assert status == 422 and foreign == unknown
            status, got = await _post(http, write, {"directory": str(stick), "offline": True})
            assert status == 200, got
            assert got["terminals"] == [ours]
            assert all(t.startswith(f"T{HOME}") for t in got["skipped_terminals"])
        status, got = await _post(province, write, {"directory": str(stick), "offline": True})
        assert status == 200 and got["terminals"] == [ours, theirs]

        # returns: one of each county on the same stick
        their_file = _put_state(stick, theirs, their_key)
        _put_state(stick, ours, our_key)
        stray_file = _put_state(stick, "T140121999999", their_key)  # no such terminal
        returns = "/api/v1/admin/bundles/returns"
        db = running.app[DB]
        async with await county_admin(server, HOME) as http:
            for already in (0, 1):  # refused the same before and after the province took it in
                status, got = await _post(http, returns, {"directory": str(stick)})
                assert status == 200, got
                assert got["terminals"] == ([ours] if not already else [])
                assert (got["states"], got["already_imported"]) == (1 - already, already)
                assert set(got["refused"]) == {their_file, stray_file}
                assert (got["refused"][their_file].replace(theirs, "…")
                        == got["refused"][stray_file].replace("T140121999999", "…"))
                if not already:
                    assert await db.read(lambda c: _usb_trace(c, theirs)) == (0, None)
                    status, got = await _post(province, returns, {"directory": str(stick)})
                    assert status == 200 and got["terminals"] == [theirs], got
                    assert (got["states"], got["already_imported"]) == (1, 1)
        returned, contact = await db.read(lambda c: _usb_trace(c, theirs))
        assert returned == 1 and contact is not None

"""Helpers shared by the terminal tests: a terminal config for tmp_path, and the admin
steps (upload, assign, roster) done through the real server's API."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from pathlib import Path
from typing import Any

import aiohttp

from terminal.config import TerminalConfig
from tests import tusclient
from tests.conftest import COUNTY

TERMINAL_ID = "T140121100001"
VILLAGE = "140121100001"
REPO = Path(__file__).resolve().parent.parent


def terminal_config(tmp_path: Path, server_url: str = "", **changes: Any) -> TerminalConfig:
    base = TerminalConfig(
        data_dir=tmp_path / "terminal", terminal_id=TERMINAL_ID, server_url=server_url,
        zeroconf=False, zeroconf_interfaces=("127.0.0.1",), status_host="127.0.0.1", status_port=0,
        headless=True, playback_rate=8.0, min_free_bytes=0, sync_interval=30.0,
        outbox_interval=30.0, heartbeat_interval=30.0, discovery_timeout=5.0,
        backoff_initial=0.05, backoff_max=0.5, session_save_seconds=0.2, progress_log_seconds=0.2,
    )
    return base.replace(**changes)


async def enrollment_code(http: aiohttp.ClientSession, terminal_id: str) -> str:
    """The one-time code an admin (`http`) makes for a terminal point."""
    async with http.post(f"/api/v1/admin/terminals/{terminal_id}/enrollment", json={}) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["code"])


async def enroll(http: aiohttp.ClientSession, tconfig: TerminalConfig, server_url: str, *,
                 keep_address: bool = True) -> TerminalConfig:
    """Enroll the terminal of `tconfig` as a site manager would: the admin (`http`) makes a
    one-time code, the terminal trades it for its token and the key it pins. With
    `keep_address=False` the terminal forgets the address it enrolled at, so it must find
    the server again by mDNS."""
    from shared.sqlite import Database
    from terminal.network.enroll import enroll as trade_code
    from terminal.network.link import LAST_GOOD
    from terminal.storage import db as q
    from terminal.storage.migrations import MIGRATIONS

    code = await enrollment_code(http, tconfig.terminal_id)
    async with Database(tconfig.db_path, MIGRATIONS) as database, aiohttp.ClientSession() as plain:
        await trade_code(plain, database, server_url, code)
        if not keep_address:
            await database.write(lambda c: q.set_kv(c, LAST_GOOD, ""))
    return tconfig


async def upload(http: aiohttp.ClientSession, path: Path, title: str) -> tuple[str, str]:
    """Upload a file through tus; returns (content id, sha256)."""
    data = await asyncio.to_thread(path.read_bytes)
    resp = await tusclient.upload(http, data, title=title, kind="lecture", filename=path.name)
    assert resp.status == 204, resp.status
    return resp.headers["Yuanjiao-Content-Id"], hashlib.sha256(data).hexdigest()


async def assign(http: aiohttp.ClientSession, content_id: str, village: str = VILLAGE,
                 needed_by: str | None = None) -> str:
    """Assign content to a village; returns the assignment id."""
    body: dict[str, Any] = {"content_id": content_id, "scope": "village", "target": village}
    if needed_by:
        body["needed_by"] = needed_by
    async with http.post("/api/v1/admin/assignments", json=body) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["id"])


async def import_roster(http: aiohttp.ClientSession) -> None:
    data = await asyncio.to_thread((COUNTY / "members.csv").read_bytes)
    async with http.post("/api/v1/admin/members/import", data=data,
                         headers={"Content-Type": "text/csv"}) as r:
        assert r.status == 200, await r.text()


async def member_record(http: aiohttp.ClientSession, member_no: str) -> dict[str, Any]:
    async with http.get(f"/api/v1/admin/reports/members/{member_no}") as r:
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body


def python() -> str:
    return sys.executable


async def eventually(check: Any, timeout: float, every: float = 0.1) -> Any:
    """Re-check an outside condition (another process, the server) until it holds.

    For state inside the terminal, `Terminal.wait_until` wakes on each change instead.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the condition did not hold in time")
        await asyncio.sleep(every)


def item_state(terminal: Any, sha256: str, state: str = "ready") -> Any:
    """A predicate for `Terminal.wait_until`: the item is in `state`."""
    async def check() -> bool:
        snap = await terminal.snapshot()
        return any(i.sha256 == sha256 and i.state == state for i in snap.items)
    return check


def backlog_empty(terminal: Any) -> Any:
    async def check() -> bool:
        return bool((await terminal.snapshot()).outbox_backlog == 0)
    return check

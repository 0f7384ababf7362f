"""What the terminal says about itself: one snapshot for the status endpoint, the CLI
and the heartbeat, and the small HTTP endpoint that serves it.

`GET /status` answers anyone on the network (a technician's laptop finds the terminal
by mDNS and reads it). The session controls under `/control/` answer only callers on
this machine — the TV front end and `yuanjiao-terminal session`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from terminal.control import ControlError, ControlRefused, RosterAnswer, decode_request

log = logging.getLogger(__name__)


class ItemStatus(msgspec.Struct, frozen=True, kw_only=True):
    sha256: str
    title: str
    size: int
    state: str
    bytes_present: int
    assigned: bool
    needed_by: str | None = None
    resumed_from: int | None = None
    error: str = ""
    kind: str = ""  # shared.protocol.ContentKind, for the menu by kind
    duration_seconds: float = 0.0


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """Something keeping the terminal from being fully well, for the TV's home screen."""

    code: str  # not_enrolled | disk_full | catalog_stale | clock_unconfirmed | no_link | no_catalog
    message: str  # Chinese, plain words
    action: str  # Chinese: what the site manager can do


class NextSession(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    title: str
    starts_at: str  # RFC 3339, UTC
    items: list[str]
    ready: bool  # every item is in the cache
    missing: int = 0  # items not ready yet


class SessionSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The last session that ended on this box (already in the outbox)."""

    record_id: str
    title: str
    attendees: list[str]  # member numbers
    watched_seconds: float  # summed over the items
    ended_at: str
    delivered: bool = False


class SessionStatus(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    session_id: str | None
    attendees: list[str]
    playing: str | None
    position_seconds: float
    state: str
    duration_seconds: float = 0.0
    item_index: int = 0
    item_count: int = 0
    item_title: str = ""
    volume: int = 100


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    terminal_id: str
    village_code: str
    software_version: str
    condition: str  # "ok", or what keeps the terminal from being ok, in words
    server_url: str | None
    server_fingerprint: str | None
    catalog_version: int | None
    catalog_expires_at: str | None
    catalog_stale: bool
    download_window: str
    window_open: bool
    bandwidth_limit: int
    cache_bytes: int
    cache_quota: int
    disk_free: int
    disk_total: int
    items: list[ItemStatus]
    outbox_backlog: int
    outbox_quarantined: int  # refused by the server: held, offered again later
    session: SessionStatus | None = None
    outbox_problem: str = ""  # the server's words on the last held record
    outbox_retry_seconds: float | None = None  # until held records are offered again
    clock_confirmed: bool = False  # the wall clock agrees with the server's last answer
    clock_boot_id: str = ""
    clock_confirmed_at: str | None = None  # the server's time at its last answer (this run)
    clock_error_seconds: float | None = None  # wall clock minus the server's (+: ahead)
    enrolled: bool = True
    village_name: str = ""
    link: str = ""  # "connected", "searching" or why the county server is out of reach
    problems: list[Problem] = []
    next_session: NextSession | None = None
    scheduled: list[NextSession] = []  # every catalog session not yet run (what `session` can start)
    roster_members: int = 0
    last_session: SessionSummary | None = None


SnapshotSource = Callable[[], Awaitable[Snapshot]]
# the action and its decoded request (a struct from terminal.control.ROUTES) -> its answer
Control = Callable[[str, Any], Awaitable[Any]]
RosterSource = Callable[[], Awaitable[RosterAnswer]]


def _local(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


class StatusServer:
    """The status endpoint; `async_start()` gives the port, `async_close()` stops it."""

    def __init__(self, snapshot: SnapshotSource, control: Control, host: str, port: int,
                 roster: RosterSource | None = None) -> None:
        self._snapshot = snapshot
        self._control = control
        self._roster = roster
        self._host = host
        self._port = port
        app = web.Application()
        app.router.add_get("/status", self._status)
        app.router.add_get("/control/roster", self._get_roster)
        app.router.add_post("/control/{action}", self._act)
        self._runner = web.AppRunner(app, access_log=None)
        self.port = 0

    async def async_start(self) -> int:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def async_close(self) -> None:
        await self._runner.cleanup()

    async def _status(self, request: web.Request) -> web.Response:
        return web.Response(body=msgspec.json.encode(await self._snapshot()), content_type="application/json")

    async def _get_roster(self, request: web.Request) -> web.Response:
        if not _local(request):
            return _error(ControlRefused(403, "local_only", "只能在本机查看名册",
                                         "the roster answers only on this machine"))
        if self._roster is None:
            return _error(ControlRefused(404, "no_roster", "没有名册", "no roster here"))
        return web.Response(body=msgspec.json.encode(await self._roster()), content_type="application/json")

    async def _act(self, request: web.Request) -> web.Response:
        if not _local(request):
            return _error(ControlRefused(403, "local_only", "只能在本机操作放映",
                                         "session controls answer only on this machine"))
        try:
            command = decode_request(request.match_info["action"], await request.read())
            answer = await self._control(request.match_info["action"], command)
        except ControlRefused as e:
            return _error(e)
        return web.Response(body=msgspec.json.encode(answer), content_type="application/json")


def _error(e: ControlRefused) -> web.Response:
    body: ControlError = e.error
    return web.Response(status=e.status, body=msgspec.json.encode(body), content_type="application/json")

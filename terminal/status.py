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

import msgspec
from aiohttp import web

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


class SessionStatus(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    session_id: str | None
    attendees: list[str]
    playing: str | None
    position_seconds: float
    state: str


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
    outbox_quarantined: int
    session: SessionStatus | None = None


SnapshotSource = Callable[[], Awaitable[Snapshot]]
Control = Callable[[str, dict[str, object]], Awaitable[dict[str, object]]]


def _local(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


class StatusServer:
    """The status endpoint; `async_start()` gives the port, `async_close()` stops it."""

    def __init__(self, snapshot: SnapshotSource, control: Control, host: str, port: int,
                 peer_handler: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None,
                 ) -> None:
        self._snapshot = snapshot
        self._control = control
        self._host = host
        self._port = port
        app = web.Application()
        app.router.add_get("/status", self._status)
        app.router.add_post("/control/{action}", self._act)
        if peer_handler is not None:  # terminals fetching verified items from this one
            app.router.add_get("/peer/blobs/{sha256}", peer_handler)
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

    async def _act(self, request: web.Request) -> web.Response:
        if not _local(request):
            raise web.HTTPForbidden(text="session controls answer only on this machine")
        try:
            body = msgspec.json.decode(await request.read() or b"{}", type=dict[str, object])
        except msgspec.DecodeError:
            raise web.HTTPBadRequest(text="the body must be a JSON object") from None
        try:
            answer = await self._control(request.match_info["action"], body)
        except LookupError as e:
            raise web.HTTPNotFound(text=str(e)) from None
        except ValueError as e:
            raise web.HTTPUnprocessableEntity(text=str(e)) from None
        return web.Response(body=msgspec.json.encode(answer), content_type="application/json")

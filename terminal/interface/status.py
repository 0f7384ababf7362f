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

from terminal.interface.control import ControlError, ControlRefused, RosterAnswer, decode_request
from terminal.interface.snapshot import (  # the snapshot's shapes live there; re-exported for callers
    ItemStatus,
    NextSession,
    Problem,
    SessionStatus,
    SessionSummary,
    Snapshot,
)

__all__ = ["ItemStatus", "NextSession", "Problem", "SessionStatus", "SessionSummary", "Snapshot",
           "StatusServer"]

log = logging.getLogger(__name__)


SnapshotSource = Callable[[], Awaitable[Snapshot]]
# the action and its decoded request (a struct from terminal.interface.control.ROUTES) -> its answer
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
                 roster: RosterSource | None = None,
                 peer_handler: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None,
                 ) -> None:
        self._snapshot = snapshot
        self._control = control
        self._roster = roster
        self._host = host
        self._port = port
        app = web.Application()
        app.router.add_get("/status", self._status)
        app.router.add_get("/control/roster", self._get_roster)
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

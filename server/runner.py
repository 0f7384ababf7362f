"""Running the app on a socket, with its mDNS advertisement once the port is known.

The CLI and the tests start the server the same way: `async with RunningServer(config)`.
Connections pass through a `ConnectionGuard` (server.connections): a deadline for the
request head and a cap below the open-file limit, which start-up raises where it may.
Errors the event loop reports (a failed accept, a broken transport) are logged once per
kind and then counted, however often they repeat.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from ssl import SSLContext
from typing import Any

from aiohttp import web

from server.app import create_app
from server.appkeys import DISCOVERY, SERVER_ID, SIGNER
from server.config import ServerConfig
from server.connections import ConnectionGuard, connection_cap, raise_open_file_limit
from server.discovery import Discovery
from server.tls import tls_context
from shared.ratelog import RepeatingLog

log = logging.getLogger(__name__)


LISTEN_BACKLOG = 1024  # connections the kernel queues for us
ACCEPT_BATCH = 32  # connections taken off that queue per turn of the event loop


class GuardedSite(web.BaseSite):
    """aiohttp's TCPSite, with every connection passing through a ConnectionGuard.

    asyncio accepts as many connections per turn of the loop as the backlog it is given;
    a flood would then hold the loop for a long turn. It gets a small batch, and the
    socket's kernel queue is set long again afterwards, so a burst waits in the kernel
    instead of being dropped."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard,
                 ssl_context: SSLContext | None = None) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=ACCEPT_BATCH)
        self._host, self._port, self.guard = host, port, guard

    @property
    def name(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        family, _, _, _, address = (await loop.getaddrinfo(
            self._host or "0.0.0.0", self._port, type=socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE))[0]
        sock = socket.create_server(address[:2], family=family, backlog=LISTEN_BACKLOG)
        self._server = await loop.create_server(
            self.guard, sock=sock, ssl=self._ssl_context, backlog=self._backlog,
            ssl_handshake_timeout=self.guard.header_timeout if self._ssl_context else None,
        )
        sock.listen(LISTEN_BACKLOG)  # asyncio listened with the batch size; queue more


class _RequestErrorLog(logging.Logger):
    """The logger aiohttp's request handler uses: an error it reports per request (a
    client hanging up mid-body, a handler failing the same way for every terminal) is
    logged once per kind, then counted."""

    def __init__(self, repeats: RepeatingLog) -> None:
        super().__init__("aiohttp.server")
        self.parent = logging.getLogger("aiohttp")
        self._repeats = repeats

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        gone = isinstance(exc, ConnectionError)  # the client went away: not our fault
        self._repeats.event(f"request: {type(exc).__name__}", str(msg), *args,
                            level=logging.INFO if gone else logging.ERROR,
                            exc_info=None if gone else exc)


class RunningServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.app = create_app(config)
        self.loop_errors = RepeatingLog(log)
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=False,
                                     keepalive_timeout=config.keepalive_timeout,
                                     logger=_RequestErrorLog(self.loop_errors))
        self.port = 0
        self.guard: ConnectionGuard | None = None
        self._old_handler: Any = None
        self.discovery: Discovery | None = None
        if config.zeroconf:
            self.discovery = Discovery(
                name=config.server_name, interfaces=config.zeroconf_interfaces,
                poll_seconds=config.address_poll_seconds,
            )
            self.app[DISCOVERY] = self.discovery

    @property
    def url(self) -> str:
        host = self.config.host if self.config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        scheme = "https" if self.config.tls_certificate else "http"
        return f"{scheme}://{host}:{self.port}"

    async def __aenter__(self) -> RunningServer:
        await self.async_start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.async_close()

    async def async_start(self) -> None:
        limit = raise_open_file_limit()
        await self._runner.setup()
        assert self._runner.server is not None
        self.guard = ConnectionGuard(
            self._runner.server, header_timeout=self.config.header_timeout,
            max_connections=connection_cap(self.config.max_connections, limit),
            max_waiting_per_address=self.config.max_waiting_per_address,
        )
        loop = asyncio.get_running_loop()
        self._old_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._loop_error)
        site = GuardedSite(self._runner, self.config.host, self.config.port, self.guard,
                           ssl_context=tls_context(self.config))
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        if self.discovery is not None:
            await self.discovery.async_start(
                server_id=self.app[SERVER_ID], fingerprint=self.app[SIGNER].fingerprint,
                port=self.port,
            )
        log.info("county server listening on %s (at most %d connections, open-file limit %d)",
                 self.url, self.guard.max_connections, limit)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        key = f"{context.get('message', '')}: {type(exc).__name__ if exc else ''}"
        self.loop_errors.event(key, "%s", context.get("message", "event loop error"),
                               level=logging.ERROR, exc_info=exc)

    async def async_close(self) -> None:
        """Stop serving; safe to call more than once."""
        if self.discovery is not None:
            await self.discovery.async_close()
        if self.guard is not None:
            self.guard.close_idle()
        await self._runner.cleanup()
        if self.guard is not None:
            asyncio.get_running_loop().set_exception_handler(self._old_handler)
            self.guard = None

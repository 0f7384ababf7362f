"""Running the app on a socket, with its mDNS advertisement once the port is known.

The CLI and the tests start the server the same way: `async with RunningServer(config)`.
"""

from __future__ import annotations

import logging

from aiohttp import web

from server.app import create_app
from server.appkeys import DISCOVERY, SERVER_ID, SIGNER
from server.config import ServerConfig
from server.discovery import Discovery
from server.tls import tls_context

log = logging.getLogger(__name__)


class RunningServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.app = create_app(config)
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=False)
        self.port = 0
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
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, reuse_address=True,
                           ssl_context=tls_context(self.config))
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        if self.discovery is not None:
            await self.discovery.async_start(
                server_id=self.app[SERVER_ID], fingerprint=self.app[SIGNER].fingerprint,
                port=self.port,
            )
        log.info("county server listening on %s", self.url)

    async def async_close(self) -> None:
        """Stop serving; safe to call more than once."""
        if self.discovery is not None:
            await self.discovery.async_close()
        await self._runner.cleanup()

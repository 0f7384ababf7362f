"""The link to the county server: which URL, and whether it is trusted.

`get()` returns a client for a server that just proved it holds the pinned key,
trying the candidates in order (mDNS answers, the last good address, the configured
URL). Whoever sees the link fail calls `lost()`; the next `get()` looks again, so a
server that moved to a new address is followed as soon as mDNS or the configuration
names it. A link that keeps failing is reported once as a warning, then at debug.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

import aiohttp

from shared.sqlite import Database
from terminal.errors import ServerRefused, ServerUnreachable, UntrustedServer
from terminal.network.client import ServerClient
from terminal.network.discovery import Discovery, order_candidates
from terminal.network.trust import Trust
from terminal.storage import db as q

log = logging.getLogger(__name__)

LAST_GOOD = "last_good_url"


class Link:
    def __init__(
        self, http: aiohttp.ClientSession, database: Database, trust: Trust,
        discovery: Discovery | None, *, configured_url: str, terminal_id: str, discovery_timeout: float,
        token: str = "",
    ) -> None:
        self._token = token
        self._http = http
        self._db = database
        self._trust = trust
        self._discovery = discovery
        self._configured = configured_url
        self._terminal_id = terminal_id
        self._timeout = discovery_timeout
        self._waited = False
        self._failing = False
        self.client: ServerClient | None = None
        self.problem = ""  # why the last attempt failed, in words
        self._lock = asyncio.Lock()

    async def get(self) -> ServerClient:
        if self.client is not None:
            return self.client
        async with self._lock:  # the loops share one search, and one first-contact pinning
            if self.client is not None:
                return self.client
            return await self._find()

    async def _find(self) -> ServerClient:
        if self._discovery is not None and not self._waited:
            self._waited = True
            await self._discovery.async_wait(self._timeout)
        last_good = await self._db.read(lambda c: q.get_kv(c, LAST_GOOD))
        seen = list(self._discovery.servers.values()) if self._discovery is not None else []
        urls = order_candidates(seen, self._trust.fingerprint, last_good, self._configured)
        problems: list[str] = []
        untrusted: list[str] = []
        for url in urls:
            client = ServerClient(self._http, url, self._terminal_id, self._token)
            try:
                await self._trust.async_check(client)
            except (ServerUnreachable, ServerRefused, UntrustedServer) as e:
                problems.append(str(e))
                if isinstance(e, UntrustedServer):
                    untrusted.append(str(e))
                continue
            if url != last_good:
                await self._db.write(partial(q.set_kv, key=LAST_GOOD, value=url))
            log.info("county server at %s", url)
            self.client, self._failing, self.problem = client, False, ""
            return client
        tried = ", ".join(urls) or "nothing (no mDNS answer, no stored or configured URL)"
        if untrusted:  # a server answered, but not with the enrolled key (or none is enrolled)
            self.problem = f"refused: {untrusted[0]}"
            message = f"{self.problem} (tried {tried})"
        else:
            self.problem = "no server found" if not urls else "server unreachable"
            message = f"{self.problem}: tried {tried}"
        if not self._failing:
            log.warning("%s", message)
            self._failing = True
        else:
            log.debug("%s; %s", message, "; ".join(problems))
        raise ServerUnreachable(message)

    def use_token(self, token: str) -> None:
        """A rotated token: used from the next request on, by this client and later ones."""
        self._token = token
        if self.client is not None:
            self.client.use_token(token)

    def lost(self, reason: object = "") -> None:
        if self.client is not None:
            log.info("lost the server at %s: %s", self.client.base_url, reason)
        self.client = None

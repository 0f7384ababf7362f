"""Finding the county server, and letting the county find this terminal.

The server is browsed as `_yuanjiao._tcp.local.`; every answer becomes a candidate
URL. Candidates are tried in order: mDNS answers whose key fingerprint matches the
pinned key, the last server that answered well (stored), then the configured URL —
mDNS fails on many real networks, so it is never the only way. An answer is only a
hint: trust comes from the pinned key, checked by `trust.py` on every contact.

The terminal advertises itself as `_yuanjiao-terminal._tcp.local.` (TXT: terminal id,
village, software version) on the port of its status endpoint, so the county server's
fleet view and a technician's laptop can find it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from dataclasses import dataclass

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from shared import service
from shared.mdns import ServiceWatcher, interface_choice, local_addresses
from terminal import constants as k

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    name: str
    url: str
    server_id: str
    fingerprint: str


class Discovery:
    """mDNS both ways. `async_start()`, then `candidates()`; `async_close()` at the end."""

    def __init__(
        self, *, interfaces: tuple[str, ...], terminal_id: str, village: str,
        version: str = k.SOFTWARE_VERSION, resolve_timeout_ms: int = k.RESOLVE_TIMEOUT_MS,
    ) -> None:
        self._interfaces = interfaces
        self._terminal_id = terminal_id
        self._village = village
        self._version = version
        self._watcher = ServiceWatcher(self._found, lambda name: self.servers.pop(name, None),
                                       resolve_timeout_ms)
        self._azc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self._changed = asyncio.Event()
        self.servers: dict[str, Candidate] = {}
        # other enrolled terminals heard on this LAN: service name -> terminal id
        self._peer_watcher = ServiceWatcher(self._peer_found, lambda name: self.peers.pop(name, None),
                                            resolve_timeout_ms)
        self._peer_browser: AsyncServiceBrowser | None = None
        self.peers: dict[str, str] = {}

    async def __aenter__(self) -> Discovery:
        await self.async_start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.async_close()

    async def async_start(self) -> None:
        self._azc = AsyncZeroconf(interfaces=interface_choice(self._interfaces),
                                  ip_version=IPVersion.V4Only)
        self._browser = AsyncServiceBrowser(
            self._azc.zeroconf, [service.SERVER_SERVICE_TYPE], handlers=[self._watcher.handler]
        )
        self._peer_browser = AsyncServiceBrowser(
            self._azc.zeroconf, [service.TERMINAL_SERVICE_TYPE], handlers=[self._peer_watcher.handler]
        )

    async def async_advertise(self, port: int) -> None:
        """Register this terminal on `port` (its status endpoint)."""
        if self._azc is None:
            raise RuntimeError("discovery is not started")
        addresses = await asyncio.to_thread(local_addresses, self._interfaces)
        label = self._terminal_id or f"unenrolled-{uuid.uuid4().hex[:8]}"
        self._info = AsyncServiceInfo(
            service.TERMINAL_SERVICE_TYPE, f"yuanjiao-terminal {label}.{service.TERMINAL_SERVICE_TYPE}",
            addresses=[socket.inet_aton(a) for a in addresses], port=port,
            properties={
                service.TXT_TERMINAL_ID: self._terminal_id, service.TXT_VILLAGE: self._village,
                service.TXT_VERSION: self._version,
            },
            server=f"yuanjiao-{label.lower()}.local.",
        )
        # The fixed type name is longer than RFC 6335's 15 bytes; zeroconf needs strict=False.
        await self._azc.async_register_service(self._info, allow_name_change=True, strict=False)
        log.info("advertising terminal %s on %s port %d", label, ", ".join(addresses), port)

    def lan_peers(self) -> list[str]:
        """Terminal ids of the other enrolled terminals heard on this LAN."""
        return sorted({tid for tid in self.peers.values() if tid and tid != self._terminal_id})

    def _peer_found(self, name: str, info: AsyncServiceInfo, txt: dict[str, str]) -> None:
        self.peers[name] = txt.get(service.TXT_TERMINAL_ID, "")

    async def async_close(self) -> None:
        await self._peer_watcher.async_close()
        if self._peer_browser is not None:
            await self._peer_browser.async_cancel()
            self._peer_browser = None
        await self._watcher.async_close()
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None
        if self._azc is not None:
            if self._info is not None:
                with contextlib.suppress(Exception):
                    await self._azc.async_unregister_service(self._info)
            await self._azc.async_close()
            self._azc = None

    async def async_wait(self, timeout: float) -> bool:
        """Wait up to `timeout` for any server answer; True if one is known."""
        if self.servers:
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        return bool(self.servers)

    def _found(self, name: str, info: AsyncServiceInfo, txt: dict[str, str]) -> None:
        addresses = list(info.parsed_addresses(IPVersion.V4Only))
        if not addresses or not info.port:
            return
        path = txt.get(service.TXT_PATH, service.API_PREFIX)
        if path != service.API_PREFIX:
            log.debug("ignoring %s: API path %s", name, path)
            return
        candidate = Candidate(
            name=name, url=f"http://{addresses[0]}:{info.port}",
            server_id=txt.get(service.TXT_SERVER_ID, ""),
            fingerprint=txt.get(service.TXT_FINGERPRINT, ""),
        )
        if self.servers.get(name) != candidate:
            log.info("server seen over mDNS: %s at %s", name, candidate.url)
        self.servers[name] = candidate
        self._changed.set()
        self._changed.clear()


def order_candidates(
    seen: list[Candidate], pinned_fingerprint: str | None, last_good: str | None, configured: str,
) -> list[str]:
    """URLs to try, best first, without repeats."""
    urls: list[str] = []
    if pinned_fingerprint:
        urls += [c.url for c in seen if c.fingerprint == pinned_fingerprint]
    else:
        urls += [c.url for c in seen]
    if last_good:
        urls.append(last_good)
    if configured:
        urls.append(configured.rstrip("/"))
    return list(dict.fromkeys(urls))

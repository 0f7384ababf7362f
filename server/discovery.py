"""mDNS: the server advertises itself and watches for terminals on its network.

It registers `_yuanjiao._tcp.local.` with TXT records (API version, server id, signing
key fingerprint), re-announces when the machine's addresses change, browses
`_yuanjiao-terminal._tcp.local.` so the fleet view can list every terminal it hears, and
unregisters on shutdown. mDNS is only a hint: nothing here is trusted for security.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from shared import service
from shared.mdns import ServiceWatcher, instance_label, interface_choice, local_addresses

log = logging.getLogger(__name__)

ADDRESS_POLL_SECONDS = 30.0
RESOLVE_TIMEOUT_MS = 3000


@dataclass(frozen=True)
class SeenTerminal:
    name: str
    terminal_id: str
    village: str
    version: str
    addresses: tuple[str, ...]
    port: int


class Discovery:
    def __init__(
        self, *, name: str, interfaces: tuple[str, ...],
        poll_seconds: float = ADDRESS_POLL_SECONDS,
    ) -> None:
        self._name = name
        self._server_id = ""
        self._fingerprint = ""
        self._port = 0
        self._interfaces = interfaces
        self._poll_seconds = poll_seconds
        self._azc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self._watcher = ServiceWatcher(self._found, lambda name: self.terminals.pop(name, None),
                                       RESOLVE_TIMEOUT_MS)
        self._poller: asyncio.Task[None] | None = None
        self.terminals: dict[str, SeenTerminal] = {}

    @property
    def instance_name(self) -> str:
        # a DNS label holds 63 bytes: a county's full name (often longer) is cut here only
        return f"{instance_label(self._name, self._server_id[:8])}.{service.SERVER_SERVICE_TYPE}"

    def _service_info(self, addresses: list[str]) -> AsyncServiceInfo:
        return AsyncServiceInfo(
            service.SERVER_SERVICE_TYPE, self.instance_name,
            addresses=[socket.inet_aton(a) for a in addresses], port=self._port,
            properties={
                service.TXT_API: service.API_VERSION,
                service.TXT_SERVER_ID: self._server_id,
                service.TXT_FINGERPRINT: self._fingerprint,
                service.TXT_PATH: service.API_PREFIX,
            },
            server=f"yuanjiao-{self._server_id[:8]}.local.",
        )

    async def async_start(self, *, server_id: str, fingerprint: str, port: int) -> None:
        self._server_id, self._fingerprint, self._port = server_id, fingerprint, port
        self._azc = AsyncZeroconf(interfaces=interface_choice(self._interfaces),
                                  ip_version=IPVersion.V4Only)
        addresses = await asyncio.to_thread(local_addresses, self._interfaces)
        self._info = self._service_info(addresses)
        # Each call returns a task that ends once the announcements are sent.
        await (await self._azc.async_register_service(self._info, allow_name_change=True))
        log.info("advertising %s on %s port %d", self.instance_name, ", ".join(addresses), self._port)
        self._browser = AsyncServiceBrowser(
            self._azc.zeroconf, [service.TERMINAL_SERVICE_TYPE], handlers=[self._watcher.handler]
        )
        if self._interfaces == ("all",):
            self._poller = asyncio.create_task(self._watch_addresses(addresses))

    async def async_close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self._watcher.async_close()
        if self._browser is not None:
            browser, self._browser = self._browser, None
            await browser.async_cancel()
        if self._azc is not None:
            azc, self._azc = self._azc, None
            if self._info is not None:
                await (await azc.async_unregister_service(self._info))
            await azc.async_close()

    async def _watch_addresses(self, current: list[str]) -> None:
        while True:
            await asyncio.sleep(self._poll_seconds)
            now = await asyncio.to_thread(local_addresses, self._interfaces)
            if now != current and self._azc is not None and self._info is not None:
                log.info("addresses changed to %s; announcing again", ", ".join(now))
                self._info = self._service_info(now)
                await (await self._azc.async_update_service(self._info))
                current = now

    def discovered_terminal_ids(self) -> set[str]:
        return {t.terminal_id for t in self.terminals.values() if t.terminal_id}

    def _found(self, name: str, info: AsyncServiceInfo, txt: dict[str, str]) -> None:
        self.terminals[name] = SeenTerminal(
            name=name, terminal_id=txt.get(service.TXT_TERMINAL_ID, ""),
            village=txt.get(service.TXT_VILLAGE, ""), version=txt.get(service.TXT_VERSION, ""),
            addresses=tuple(info.parsed_addresses()), port=info.port or 0,
        )
        log.debug("terminal seen: %s", self.terminals[name])

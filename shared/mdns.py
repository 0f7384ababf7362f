"""mDNS pieces both programs use: which addresses to advertise, instance labels that
fit DNS, and a watcher that resolves what appears under a service type and forgets
what leaves."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Callable

import ifaddr
from zeroconf import InterfaceChoice, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceInfo

MAX_LABEL_BYTES = 63  # one DNS label (RFC 1035); the instance name is one label
NAME_CHANGE_ROOM = 3  # zeroconf appends "-2".."-99" to an instance name taken by another


def instance_label(name: str, id_part: str, limit: int = MAX_LABEL_BYTES - NAME_CHANGE_ROOM) -> str:
    """`"{name} {id_part}"` in at most `limit` bytes of UTF-8: the name is cut on a
    character boundary (never mid-character) and the id part is always kept whole, so
    two servers with the same long name still differ. The full name is shown elsewhere."""
    tail = f" {id_part}" if id_part else ""
    room = limit - len(tail.encode("utf-8"))
    if room <= 0:
        return id_part.encode("utf-8")[:limit].decode("utf-8", "ignore")
    cut = name.strip().encode("utf-8")[:room].decode("utf-8", "ignore").rstrip()
    return f"{cut}{tail}" if cut else id_part


def interface_choice(interfaces: tuple[str, ...]) -> InterfaceChoice | list[str]:
    """The setting ('all', or addresses) as python-zeroconf takes it."""
    return InterfaceChoice.All if interfaces == ("all",) else list(interfaces)


def local_addresses(interfaces: tuple[str, ...]) -> list[str]:
    """IPv4 addresses to advertise: the configured ones, or every interface's (blocking)."""
    if interfaces != ("all",):
        return [a for a in interfaces if _is_ipv4(a)]
    found = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ip.ip.startswith("169.254."):
                found.add(ip.ip)
    # A loopback address means nothing to a peer on the LAN: offer it only when alone.
    lan = {a for a in found if not a.startswith("127.")}
    return sorted(lan or found)


def _is_ipv4(value: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
    except ValueError:
        return False


def txt_record(info: AsyncServiceInfo) -> dict[str, str]:
    return {
        key.decode("utf-8", "replace"): (value or b"").decode("utf-8", "replace")
        for key, value in info.properties.items()
    }


Found = Callable[[str, AsyncServiceInfo, dict[str, str]], None]


class ServiceWatcher:
    """Give `handler` to an AsyncServiceBrowser: every service that appears or changes is
    resolved off the browser's callback, then reported to `on_found`; one that leaves is
    reported to `on_removed`."""

    def __init__(self, on_found: Found, on_removed: Callable[[str], object],
                 resolve_timeout_ms: int) -> None:
        self._on_found = on_found
        self._on_removed = on_removed
        self._timeout_ms = resolve_timeout_ms
        self._tasks: set[asyncio.Task[None]] = set()

    def handler(self, zeroconf: Zeroconf, service_type: str, name: str,
                state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            self._on_removed(name)
            return
        task = asyncio.get_running_loop().create_task(self._resolve(zeroconf, service_type, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, zeroconf: Zeroconf, service_type: str, name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        if await info.async_request(zeroconf, self._timeout_ms):
            self._on_found(name, info, txt_record(info))

    async def async_close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

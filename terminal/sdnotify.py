"""sd_notify without a dependency: one datagram to the socket systemd names in
NOTIFY_SOCKET — `READY=1` once the service is up, `WATCHDOG=1` while its main loop runs
(the TV interface's Tk loop, the daemon's event loop). Without NOTIFY_SOCKET (tests, a
shell) it does nothing."""

from __future__ import annotations

import contextlib
import os
import socket


def notify(message: str) -> bool:
    """Send `message`; True when a service manager was there to hear it."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
        return True
    return False


def watchdog_interval() -> float | None:
    """Seconds between `WATCHDOG=1` pings: half of what the unit's WatchdogSec asks for,
    or None when no watchdog is set."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    return int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else None

"""Connection floods: a deadline for the request head, a cap on connections, cheap refusals.

aiohttp has no request-head timeout of its own, so each accepted connection is wrapped
in a small protocol (`_Guarded`) in front of aiohttp's request handler:

* a new connection has `header_timeout` seconds to send a complete request head (up to
  the blank line); if it has not, it is closed (slowloris, idle sockets). Later requests
  on a kept-alive connection are bounded by aiohttp's `keepalive_timeout`, which closes
  a connection whose next request has not arrived whole in time;
* one address may hold at most `max_waiting_per_address` connections that have not sent
  their first request head; a new one beyond that closes that address's oldest such
  connection, if it has waited `wait_grace` (1 s) already (a burst of real requests from one
  proxy or office, whose heads are still in flight, is not cut). A flood from one
  machine thus only ever pushes out its own connections;
* at most `max_connections` connections are open (kept below the open-file limit, see
  `raise_open_file_limit`). When a new one would pass the cap, the oldest connection
  still waiting for its first request head, from the address holding the most of them,
  is closed to make room: a flood of idle sockets pushes out its own kind, and a
  terminal or an admin that sends its request at once gets through. If every open
  connection is busy with a request, the new one gets a fixed 503 with Retry-After and
  is closed, without reading a byte;
* all of it is counted in `stats` and logged once per kind (`RepeatingLog`), never per
  connection.

With TLS served directly, the handshake is bounded by `ssl_handshake_timeout` (the same
header timeout) and a connection counts from the end of its handshake.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from shared.ratelog import RepeatingLog

log = logging.getLogger(__name__)

FD_RESERVE: Final = 256  # open files kept for the database, media, uploads, ffprobe, mDNS
FD_WANTED: Final = 65536  # soft limit asked for when the hard limit is unlimited
RETRY_AFTER_SECONDS: Final = 5
WAIT_GRACE: Final = 1.0  # seconds a new connection is safe from the per-address limit
_BODY: Final = (
    '{"error":{"code":"busy","message":"服务器连接已满，请稍后再试。The server has too many '
    'connections open; try again in a few seconds."}}'
).encode()
REFUSAL: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
    + f"Retry-After: {RETRY_AFTER_SECONDS}\r\nConnection: close\r\n".encode()
    + f"Content-Length: {len(_BODY)}\r\n\r\n".encode() + _BODY
)


def raise_open_file_limit(wanted: int = FD_WANTED) -> int:
    """Raise the soft RLIMIT_NOFILE as far as the hard limit allows; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, e)
    return soft


def connection_cap(max_connections: int, open_file_limit: int) -> int:
    """The cap actually used: the setting, but always `FD_RESERVE` files below the limit."""
    return max(1, min(max_connections, open_file_limit - FD_RESERVE))


@dataclass
class ConnectionStats:
    open: int = 0
    peak: int = 0
    accepted: int = 0
    head_timeouts: int = 0  # closed for not sending a request head in time
    evicted: int = 0  # closed, still without a head, to make room for a new connection
    refused: int = 0  # answered 503 at once: every open connection was busy


class ConnectionGuard:
    """A protocol factory for `loop.create_server`, wrapping aiohttp's."""

    def __init__(
        self, factory: Callable[[], asyncio.Protocol], *, max_connections: int,
        header_timeout: float, max_waiting_per_address: int, wait_grace: float = WAIT_GRACE,
    ) -> None:
        self._factory = factory
        self.wait_grace = wait_grace
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.max_waiting_per_address = max_waiting_per_address
        self._open: set[_Guarded] = set()
        # Connections without a request head yet, per peer address, oldest first.
        self._waiting: dict[str, dict[_Guarded, None]] = {}
        self.stats = ConnectionStats()
        self.repeats = RepeatingLog(log)

    def __call__(self) -> asyncio.Protocol:
        return _Guarded(self)

    @property
    def waiting(self) -> int:
        """Open connections that have not sent their first request head."""
        return sum(len(w) for w in self._waiting.values())

    def _evict_oldest(self, address: str, why: str) -> None:
        oldest = next(iter(self._waiting[address]))
        self.stats.evicted += 1
        self.repeats.event(why, "%s: closing the oldest connections that have not sent a "
                           "request", why)
        oldest.drop()

    def _admit(self, conn: _Guarded) -> bool:
        mine = self._waiting.get(conn.address)
        if mine is not None and len(mine) >= self.max_waiting_per_address \
                and conn.opened - next(iter(mine)).opened >= self.wait_grace:
            self._evict_oldest(conn.address, "too many idle connections from one address")
        if len(self._open) >= self.max_connections:
            if not self._waiting:
                self.stats.refused += 1
                self.repeats.event("refused", "connection limit (%d) reached and every "
                                   "connection busy: refusing new ones with 503",
                                   self.max_connections)
                return False
            crowded = max(self._waiting, key=lambda a: len(self._waiting[a]))
            self._evict_oldest(crowded, f"connection limit ({self.max_connections}) reached")
        self._open.add(conn)
        self._waiting.setdefault(conn.address, {})[conn] = None
        self.stats.accepted += 1
        self.stats.open = len(self._open)
        self.stats.peak = max(self.stats.peak, self.stats.open)
        return True

    def _head_done(self, conn: _Guarded) -> None:
        mine = self._waiting.get(conn.address)
        if mine is not None:
            mine.pop(conn, None)
            if not mine:
                del self._waiting[conn.address]

    def _timed_out(self, conn: _Guarded) -> None:
        self.stats.head_timeouts += 1
        self.repeats.event("head timeout", "closing connections that sent no complete request "
                           "head within %.1f s", self.header_timeout, level=logging.INFO)
        conn.drop()

    def close_idle(self) -> None:
        """Close the connections that never sent a byte (aiohttp does not know them)."""
        for waiting in list(self._waiting.values()):
            for conn in list(waiting):
                if not conn.started:
                    conn.drop()

    def _gone(self, conn: _Guarded) -> None:
        self._open.discard(conn)
        self._head_done(conn)
        self.stats.open = len(self._open)


class _Guarded(asyncio.Protocol):
    """One connection: aiohttp's handler behind a head deadline."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self._guard = guard
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""
        self.address = ""
        self.opened = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.opened = asyncio.get_running_loop().time()
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self._guard._admit(self):
            transport.write(REFUSAL)
            transport.close()
            return
        self._timer = asyncio.get_running_loop().call_later(
            self._guard.header_timeout, self._guard._timed_out, self)
        # aiohttp's handler (and its task) is made only when the first byte arrives: a
        # socket that sends nothing costs this object and a timer, nothing more.

    @property
    def started(self) -> bool:
        return self._inner is not None

    def drop(self) -> None:
        """Close at once and stop counting this connection."""
        self._guard._gone(self)
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if b"\r\n\r\n" in seen or b"\n\n" in seen:
                self._timer.cancel()
                self._timer = None
                self._tail = b""
                self._guard._head_done(self)
            else:
                self._tail = seen[-3:]
        if self._inner is None:
            if self._transport is None or self._transport.is_closing():
                return
            self._inner = self._guard._factory()
            self._inner.connection_made(self._transport)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard._gone(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._inner is not None:
            inner, self._inner = self._inner, None
            inner.connection_lost(exc)

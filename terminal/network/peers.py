"""Sharing with the county's other terminals: serving what this one holds verified, and
fetching from peers before the server.

Serving (`PeerService`, `GET /peer/blobs/<sha256>` on the status port): only to a
caller whose request carries a credential the county server signed (checked with the
key pinned at enrollment) and is signed by that credential's terminal key
(`shared.peers`); only items in the cache marked ready; never while a session plays (a
transfer running when playback starts is cut); at most `peer_max_uploads` at once and
`peer_upload_limit` bytes per second. Ranges as for the server's blobs: `bytes=N-` or
`bytes=N-M`, `If-Range` against the quoted sha256.

Fetching (`PeerFetcher`): the server names the peers to try first for an item (same
village, then the township); each is tried in turn with the piece hashes checked
strictly — the first bad piece ends that peer for good (it is reported in the heartbeat)
and the verified pieces stay for the next source; when no peer has it, the server.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import datetime

import msgspec
from aiohttp import web

from shared.peers import (
    BadCredential,
    PeerCredential,
    PeerSource,
    SignedCredential,
    check_request,
    proof_headers,
)
from shared.sqlite import Database
from shared.timeutil import utcnow
from terminal.errors import ServerRefused, ServerUnreachable
from terminal.network.bandwidth import RateLimiter
from terminal.network.client import ServerClient
from terminal.network.trust import Trust
from terminal.storage import db as q
from terminal.storage.cache import Cache
from terminal.storage.usb import own_key

log = logging.getLogger(__name__)

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_BLOCK = 256 * 1024


class PeerService:
    def __init__(self, database: Database, cache: Cache, trust: Trust, playing: Callable[[], bool],
                 *, max_uploads: int = 2, rate: int = 0) -> None:
        self._db = database
        self._cache = cache
        self._trust = trust
        self._playing = playing
        self._max = max_uploads
        self._limiter = RateLimiter(rate) if rate > 0 else None
        self.active = 0
        self.bytes_served = 0
        self.refused = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key = self._trust.key
        if key is None:
            raise web.HTTPServiceUnavailable(text="this terminal is not enrolled")
        try:
            who = check_request(dict(request.headers), request.method, request.path, key, utcnow())
        except BadCredential as e:
            self.refused += 1
            raise web.HTTPForbidden(text=f"not a county terminal: {e}") from None
        if self._playing():
            raise web.HTTPServiceUnavailable(text="a session is playing here",
                                             headers={"Retry-After": "300"})
        if self.active >= self._max:
            raise web.HTTPServiceUnavailable(text="serving enough peers already",
                                             headers={"Retry-After": "30"})
        sha = request.match_info["sha256"]
        row = await self._db.read(lambda c: q.item(c, sha))
        if row is None or row.state != "ready":
            raise web.HTTPNotFound(text="not held verified here")
        size = row.size
        start, end = 0, size - 1
        asked = request.headers.get("Range")
        if_range = request.headers.get("If-Range")
        partial = asked is not None and (if_range is None or if_range == f'"{sha}"')
        if partial and asked is not None:
            m = _RANGE.match(asked.strip())
            if m is None or int(m[1]) >= size:
                raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
            start, end = int(m[1]), min(int(m[2]) if m[2] else size - 1, size - 1)
            if end < start:
                raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
        self.active += 1
        try:
            return await self._send(request, sha, size, start, end, partial, who.terminal_id)
        finally:
            self.active -= 1

    async def _send(self, request: web.Request, sha: str, size: int, start: int, end: int,
                    partial: bool, peer: str) -> web.StreamResponse:
        resp = web.StreamResponse(status=206 if partial else 200, headers={
            "ETag": f'"{sha}"', "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"})
        if partial:
            resp.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        resp.content_length = end - start + 1
        try:
            f = await asyncio.to_thread(open, self._cache.path(sha), "rb")
        except FileNotFoundError:
            raise web.HTTPNotFound(text="not held here any more") from None
        try:
            await resp.prepare(request)
            await asyncio.to_thread(f.seek, start)
            left = end - start + 1
            while left:
                if self._playing():  # playback comes first: the peer goes elsewhere
                    log.info("stopped serving %s to %s: a session started", sha[:12], peer)
                    break
                block = await asyncio.to_thread(f.read, min(_BLOCK, left))
                if not block:
                    break
                if self._limiter is not None:
                    await self._limiter.take(len(block))
                await resp.write(block)
                self.bytes_served += len(block)
                left -= len(block)
            if left:  # cut short: close now, or the peer waits for bytes until it times out
                resp.force_close()
                if request.transport is not None:
                    request.transport.close()
        except ConnectionError:
            pass  # the peer hung up (e.g. after a bad piece): nothing to tidy
        finally:
            await asyncio.to_thread(f.close)
        return resp


class PeerFetcher:
    """Which peers to ask for an item, with this terminal's proof for each request."""

    def __init__(self, database: Database, lan: Callable[[], list[str]] | None = None) -> None:
        self._db = database
        self._lan = lan or list
        self._credential: SignedCredential | None = None
        self._credential_until: datetime | None = None
        self.bad_peers: set[str] = set()
        self._quiet = False

    async def sources(self, client: ServerClient, sha256: str) -> tuple[list[PeerSource], float]:
        """(peers to try, in the server's order, without any caught sending bad bytes;
        seconds to wait when a terminal on this LAN is fetching it from the server)."""
        try:
            found = await client.sources(sha256, self._lan())
        except (ServerRefused, ServerUnreachable) as e:
            if not self._quiet:  # an older server has no such endpoint: say it once
                log.info("no peer list from the server: %s", e)
                self._quiet = True
            return [], 0.0
        return [s for s in found.peers if s.terminal_id not in self.bad_peers], found.wait_seconds

    async def headers(self, client: ServerClient, sha256: str) -> dict[str, str] | None:
        """The credential and proof for `GET /peer/blobs/<sha256>`; None without a key."""
        key = await own_key(self._db)
        if key is None:
            return None
        now = utcnow()
        if self._credential is None or self._credential_until is None or now >= self._credential_until:
            try:
                self._credential = await client.peer_credential()
            except (ServerRefused, ServerUnreachable) as e:
                log.info("no peer credential from the server: %s", e)
                return None
            expires = msgspec.json.decode(bytes(self._credential.credential),
                                          type=PeerCredential).expires_at
            self._credential_until = now + (expires - now) / 2  # renewed half-way
        return proof_headers(self._credential, key, "GET", f"/peer/blobs/{sha256}", now)

    def caught(self, peer: str) -> None:
        self.bad_peers.add(peer)


"""Which terminal on each LAN fetches an item from the county server right now.

When several terminals of one LAN want the same film and none of them holds it yet, one
takes it from the server and the others wait for it, then take it from that one: the
film crosses the county's uplink once per LAN instead of once per terminal. A lease is
renewed by the holder's heartbeats while it reports the item downloading; a holder that
goes silent (killed, cut off) loses it after `ttl` seconds and the next asker takes
over, so a lost peer costs time, never the film.

In the database (`server.queries.peer_leases`), so several server processes behind one
proxy elect the same holder; times are wall-clock seconds, which those processes share.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from sqlalchemy import Connection

from server.db import Database
from server.queries import peer_leases as q


class Leases:
    def __init__(self, db: Database, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self.ttl = ttl
        self._clock = clock

    async def claim(self, lan: str, sha256: str, terminal_id: str) -> float:
        """0 when `terminal_id` may fetch from the server now (it holds the lease), else the
        seconds to wait before asking again."""
        now, ttl = self._clock(), self.ttl
        return await self._db.write(lambda c: q.claim(c, lan, sha256, terminal_id, now, ttl))

    def renew(self, conn: Connection, downloading: dict[str, list[str]]) -> None:
        """Inside a heartbeat write: for each terminal (a key of `downloading`), keep the
        leases of the items it still fetches, drop its others. The usual heartbeat holds
        none and writes nothing."""
        now = self._clock()
        for terminal_id in q.holders(conn, list(downloading)):
            q.renew(conn, terminal_id, set(downloading[terminal_id]), now, self.ttl)


def lan_key(terminal_id: str, heard: Iterable[str]) -> str:
    """One name for a LAN: the smallest terminal id among the asker and those it hears."""
    return min([terminal_id, *heard])

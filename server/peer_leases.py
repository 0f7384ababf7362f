"""Which terminal on each LAN fetches an item from the county server right now.

When several terminals of one LAN want the same film and none of them holds it yet, one
takes it from the server and the others wait for it, then take it from that one: the
film crosses the county's uplink once per LAN instead of once per terminal. A lease is
renewed by the holder's heartbeats while it reports the item downloading; a holder that
goes silent (killed, cut off) loses it after `ttl` seconds and the next asker takes
over, so a lost peer costs time, never the film.

In memory: after a server restart every LAN simply elects again.
"""

from __future__ import annotations

from collections.abc import Iterable


class Leases:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._held: dict[tuple[str, str], tuple[str, float]] = {}  # (lan, sha) -> (terminal, until)

    def claim(self, lan: str, sha256: str, terminal_id: str, now: float) -> float:
        """0 when `terminal_id` may fetch from the server now (it holds the lease), else the
        seconds to wait before asking again."""
        holder = self._held.get((lan, sha256))
        if holder is None or holder[1] <= now or holder[0] == terminal_id:
            self._held[(lan, sha256)] = (terminal_id, now + self.ttl)
            return 0.0
        return max(1.0, min(self.ttl, holder[1] - now))

    def renew(self, terminal_id: str, downloading: Iterable[str], now: float) -> None:
        """A heartbeat: keep the leases of the items this terminal is still fetching."""
        busy = set(downloading)
        for key, (holder, _until) in list(self._held.items()):
            if holder == terminal_id:
                if key[1] in busy:
                    self._held[key] = (holder, now + self.ttl)
                else:
                    del self._held[key]  # done (or given up): the LAN now asks its peers


def lan_key(terminal_id: str, heard: Iterable[str]) -> str:
    """One name for a LAN: the smallest terminal id among the asker and those it hears."""
    return min([terminal_id, *heard])

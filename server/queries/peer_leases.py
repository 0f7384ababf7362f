"""Peer-fetch leases (`server.peer_leases`) in the database, so every server process on
it elects the same fetcher per LAN and item. `until` is seconds since the epoch."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, text

_HOLDER = text("SELECT terminal_id, until FROM peer_leases WHERE lan = :lan AND sha256 = :sha256")
_PUT = text(
    "INSERT INTO peer_leases (lan, sha256, terminal_id, until) "
    "VALUES (:lan, :sha256, :terminal_id, :until) "
    "ON CONFLICT (lan, sha256) DO UPDATE SET terminal_id = excluded.terminal_id, "
    "until = excluded.until"
)
_HELD = text("SELECT sha256 FROM peer_leases WHERE terminal_id = :terminal_id ORDER BY lan, sha256")
_HOLDERS = text(
    "SELECT DISTINCT terminal_id FROM peer_leases WHERE terminal_id IN :ids"
).bindparams(bindparam("ids", expanding=True))
_MINE = text("SELECT lan, sha256 FROM peer_leases WHERE terminal_id = :terminal_id")
_EXTEND = text("UPDATE peer_leases SET until = :until WHERE lan = :lan AND sha256 = :sha256")
_DROP = text("DELETE FROM peer_leases WHERE lan = :lan AND sha256 = :sha256")
_EXPIRED = text("DELETE FROM peer_leases WHERE until < :before")


def claim(conn: Connection, lan: str, sha256: str, terminal_id: str, now: float,
          ttl: float) -> float:
    """0 when `terminal_id` holds (or now takes) the lease, else seconds until it may ask again."""
    row = conn.execute(_HOLDER, {"lan": lan, "sha256": sha256}).first()
    if row is not None and row.until > now and row.terminal_id != terminal_id:
        return max(1.0, min(ttl, float(row.until) - now))
    conn.execute(_PUT, {"lan": lan, "sha256": sha256, "terminal_id": terminal_id,
                        "until": now + ttl})
    return 0.0


def held_by(conn: Connection, terminal_id: str) -> list[str]:
    """The items (sha256) whose lease `terminal_id` holds, on any LAN."""
    return list(conn.execute(_HELD, {"terminal_id": terminal_id}).scalars())


def holders(conn: Connection, terminal_ids: list[str]) -> set[str]:
    """Which of `terminal_ids` hold a lease, on any LAN."""
    if not terminal_ids:
        return set()
    return {str(t) for t in conn.execute(_HOLDERS, {"ids": terminal_ids}).scalars()}


def renew(conn: Connection, terminal_id: str, downloading: set[str], now: float,
          ttl: float) -> None:
    """Keep the terminal's leases of items still downloading, drop its others, and any
    lease expired for longer than `ttl`."""
    for lan, sha256 in conn.execute(_MINE, {"terminal_id": terminal_id}).all():
        key = {"lan": lan, "sha256": sha256}
        if sha256 in downloading:
            conn.execute(_EXTEND, {**key, "until": now + ttl})
        else:
            conn.execute(_DROP, key)
    conn.execute(_EXPIRED, {"before": now - ttl})

"""Who holds what, for terminals fetching from each other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from shared.timeutil import to_db


@dataclass(frozen=True)
class Holder:
    """A terminal holding an item: where it was last heard from (`last_address`, an IP
    address), its last heartbeat (JSON text, None before the first) and whether it is in
    the asker's village."""

    id: str
    last_address: str
    heartbeat: str | None
    same_village: bool


# same_village is an integer on SQLite and a boolean on PostgreSQL; both sort true first DESC.
_HOLDERS = text(
    "SELECT t.id, t.last_address, t.heartbeat, t.village_code = me.village_code AS same_village "
    "FROM terminal_items i JOIN terminals t ON t.id = i.terminal_id "
    "JOIN villages v ON v.code = t.village_code "
    "JOIN terminals me ON me.id = :asker JOIN villages mv ON mv.code = me.village_code "
    "WHERE i.sha256 = :sha256 AND i.state = 'ready' AND t.id != me.id "
    "AND v.unit_code = mv.unit_code "
    "AND t.enrolled_at IS NOT NULL AND t.revoked_at IS NULL AND t.public_key IS NOT NULL "
    "AND t.last_address IS NOT NULL AND t.last_seen >= :since "
    "ORDER BY same_village DESC, t.last_seen DESC LIMIT 8"
)


def holders(conn: Connection, sha256: str, terminal_id: str, seen_since: datetime,
            ) -> list[Holder]:
    """Other enrolled terminals of the asker's township that reported `sha256` ready and
    were heard since `seen_since`: same village first, then the township."""
    return [Holder(id=r.id, last_address=r.last_address, heartbeat=r.heartbeat,
                   same_village=bool(r.same_village))
            for r in conn.execute(_HOLDERS, {"asker": terminal_id, "sha256": sha256,
                                             "since": to_db(seen_since)})]

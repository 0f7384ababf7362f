"""Who holds what, for terminals fetching from each other."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from shared.timeutil import to_db


def holders(conn: sqlite3.Connection, sha256: str, terminal_id: str, seen_since: datetime,
            ) -> list[sqlite3.Row]:
    """Other enrolled terminals of the asker's township that reported `sha256` ready and
    were heard since `seen_since`: same village first, then the township."""
    return conn.execute(
        "SELECT t.id, t.last_address, t.heartbeat, t.village_code = me.village_code AS same_village "
        "FROM terminal_items i JOIN terminals t ON t.id = i.terminal_id "
        "JOIN villages v ON v.code = t.village_code "
        "JOIN terminals me ON me.id = ? JOIN villages mv ON mv.code = me.village_code "
        "WHERE i.sha256 = ? AND i.state = 'ready' AND t.id != me.id AND v.unit_code = mv.unit_code "
        "AND t.enrolled_at IS NOT NULL AND t.revoked_at IS NULL AND t.public_key IS NOT NULL "
        "AND t.last_address IS NOT NULL AND t.last_seen >= ? "
        "ORDER BY same_village DESC, t.last_seen DESC LIMIT 8",
        (terminal_id, sha256, to_db(seen_since)),
    ).fetchall()

"""What one terminal must hold: everything assigned to it, its village, its township, its
county or every terminal, plus every item of its village's upcoming sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from shared.protocol import CatalogItem, ContentKind, SessionPlan
from shared.timeutil import from_db, to_db

# The pieces row is grouped by its key (p.sha256) so PostgreSQL may select its columns.
_ITEMS_SQL = text("""
WITH wanted(content_id, needed_by) AS (
    SELECT a.content_id, a.needed_by FROM assignments a
    WHERE (a.scope = 'county'
           AND a.target IN ('', (SELECT u.county_code FROM units u WHERE u.code = :unit)))
       OR (a.scope = 'unit' AND a.target = :unit)
       OR (a.scope = 'village' AND a.target = :village)
       OR (a.scope = 'terminal' AND a.target = :terminal)
    UNION ALL
    SELECT si.content_id, s.starts_at FROM sessions s
    JOIN session_villages sv ON sv.session_id = s.id AND sv.village_code = :village
    JOIN session_items si ON si.session_id = s.id
    WHERE s.starts_at >= :since AND s.starts_at <= :until
)
SELECT c.id, c.sha256, c.size, c.title, c.kind, c.duration_seconds, c.poster_sha256,
       c.poster_size, MIN(w.needed_by) AS needed_by, p.piece_size, p.hashes
FROM wanted w JOIN contents c ON c.id = w.content_id
LEFT JOIN content_pieces p ON p.sha256 = c.sha256
WHERE c.retired_at IS NULL
GROUP BY c.id, p.sha256
ORDER BY MIN(COALESCE(w.needed_by, '9999')), c.created_at, c.id
""")

_SESSIONS_SQL = text("""
SELECT s.id, s.title, s.starts_at FROM sessions s
JOIN session_villages sv ON sv.session_id = s.id AND sv.village_code = :village
WHERE s.starts_at >= :since AND s.starts_at <= :until
ORDER BY s.starts_at, s.id
""")

_SESSION_SHAS_SQL = text(
    "SELECT c.sha256 FROM session_items si JOIN contents c ON c.id = si.content_id "
    "WHERE si.session_id = :session_id AND c.retired_at IS NULL ORDER BY si.position"
)


def catalog_parts(
    conn: Connection, terminal_id: str, village_code: str, unit_code: str,
    since: datetime, until: datetime,
) -> tuple[list[CatalogItem], list[SessionPlan]]:
    args = {"unit": unit_code, "village": village_code, "terminal": terminal_id,
            "since": to_db(since), "until": to_db(until)}
    items = [
        CatalogItem(
            sha256=r.sha256, size=int(r.size), content_id=r.id, title=r.title,
            kind=ContentKind(r.kind), duration_seconds=r.duration_seconds,
            needed_by=from_db(r.needed_by) if r.needed_by else None,
            poster_sha256=r.poster_sha256,
            poster_size=int(r.poster_size) if r.poster_size is not None else None,
            piece_size=int(r.piece_size or 0),
            pieces=_hex_digests(bytes(r.hashes)) if r.hashes is not None else [],
        )
        for r in conn.execute(_ITEMS_SQL, args)
    ]
    sessions = []
    for s in conn.execute(_SESSIONS_SQL, args).all():
        shas = list(conn.execute(_SESSION_SHAS_SQL, {"session_id": s.id}).scalars())
        sessions.append(SessionPlan(
            session_id=s.id, title=s.title, starts_at=from_db(s.starts_at), items=shas,
        ))
    return items, sessions


def _hex_digests(raw: bytes) -> list[str]:
    return [raw[i:i + 32].hex() for i in range(0, len(raw), 32)]

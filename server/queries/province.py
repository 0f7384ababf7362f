"""The province's figures per county: terminals online, readiness for the sessions
ahead, coverage over a period. Each is one grouped query over the whole province (no
query per county, terminal or session), coverage from the trained months per county
(trained_months.py), folded by the caller first."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from server.queries import trained_months

_COUNTIES = text("SELECT code, name FROM counties ORDER BY code")

_TERMINALS = text("""
SELECT u.county_code, COUNT(DISTINCT v.code) AS villages, COUNT(t.id) AS terminals,
       COUNT(CASE WHEN t.last_seen >= :online_since THEN 1 END) AS online
FROM units u JOIN villages v ON v.unit_code = u.code
LEFT JOIN terminals t ON t.village_code = v.code AND t.revoked_at IS NULL
GROUP BY u.county_code
""")

# Counted per village first (the members_village index alone), then per county: 20,000
# villages to look up, not 900,000 members.
_MEMBERS = text("""
SELECT u.county_code, SUM(m.members) FROM (
    SELECT village_code, COUNT(*) AS members FROM members GROUP BY village_code
) m JOIN villages v ON v.code = m.village_code JOIN units u ON u.code = v.unit_code
GROUP BY u.county_code
""")

# A terminal is ready for a session when it holds every (unretired) item of it verified.
_READINESS = text("""
WITH due AS (
    SELECT s.id AS session_id, t.id AS terminal_id, u.county_code
    FROM sessions s JOIN session_villages sv ON sv.session_id = s.id
    JOIN terminals t ON t.village_code = sv.village_code AND t.revoked_at IS NULL
    JOIN villages v ON v.code = t.village_code JOIN units u ON u.code = v.unit_code
    WHERE s.starts_at >= :now AND s.starts_at <= :until
),
lacking AS (
    SELECT DISTINCT d.session_id, d.terminal_id FROM due d
    JOIN session_items si ON si.session_id = d.session_id
    JOIN contents c ON c.id = si.content_id AND c.retired_at IS NULL
    LEFT JOIN terminal_items i
        ON i.terminal_id = d.terminal_id AND i.sha256 = c.sha256 AND i.state = 'ready'
    WHERE i.sha256 IS NULL
)
SELECT d.county_code, COUNT(DISTINCT d.session_id) AS sessions, COUNT(*) AS due,
       COUNT(*) - COUNT(l.terminal_id) AS ready
FROM due d LEFT JOIN lacking l ON l.session_id = d.session_id AND l.terminal_id = d.terminal_id
GROUP BY d.county_code
""")


@dataclass(frozen=True)
class CountyFigures:
    """One county: `due` counts (session, terminal) pairs of sessions ahead, `ready` those
    whose terminal holds every item; `trained` members trained in the period."""

    code: str
    name: str
    villages: int = 0
    terminals: int = 0
    online: int = 0
    members: int = 0
    trained: int = 0
    sessions: int = 0
    due: int = 0
    ready: int = 0


def county_figures(
    conn: Connection, *, first_day: str, last_day: str, online_since: str, now: str, until: str,
) -> list[CountyFigures]:
    """Every county's figures, by code. Days are the county's ("YYYY-MM-DD", both
    included); `online_since`, `now` and `until` are UTC instants as stored (ISO 8601)."""
    figures: dict[str, dict[str, object]] = {
        code: {"code": code, "name": name} for code, name in conn.execute(_COUNTIES)
    }
    for code, villages, terminals, online in conn.execute(_TERMINALS, {"online_since": online_since}):
        figures.setdefault(code, {"code": code, "name": ""}).update(
            villages=int(villages), terminals=int(terminals), online=int(online))
    for code, members in conn.execute(_MEMBERS):
        figures.setdefault(code, {"code": code, "name": ""})["members"] = int(members)
    for code, trained in trained_months.trained_by_county(conn, first_day, last_day).items():
        figures.setdefault(code, {"code": code, "name": ""})["trained"] = trained
    for code, sessions, due, ready in conn.execute(_READINESS, {"now": now, "until": until}):
        figures.setdefault(code, {"code": code, "name": ""}).update(
            sessions=int(sessions), due=int(due), ready=int(ready))
    return [CountyFigures(**f) for _, f in sorted(figures.items())]  # type: ignore[arg-type]

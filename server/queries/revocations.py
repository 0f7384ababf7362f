"""One cheap value that changes whenever a terminal token stops being valid before its
time: a terminal revoked or re-enrolled (its tokens revoked), a token rotated. Server
processes sharing the database compare it to decide whether their token caches still
hold (`server.auth.token_cache`). A few hundred rows: a scan, microseconds."""

from __future__ import annotations

from sqlalchemy import Connection, text

_MARK = text(
    "SELECT (SELECT max(revoked_at) FROM terminals), (SELECT count(revoked_at) FROM terminals), "
    "max(revoked_at), count(revoked_at), count(*), max(valid_until) FROM terminal_tokens"
)


def revocation_mark(conn: Connection) -> tuple[object, ...]:
    return tuple(conn.execute(_MARK).one())

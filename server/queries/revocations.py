"""One cheap value that changes whenever a terminal token stops being valid before its
time: a terminal revoked or re-enrolled (its tokens revoked), a token rotated (the old
one given an end). Server processes sharing the database compare it to decide whether
their token caches still hold (`server.auth.token_cache`).

A new token (a terminal enrolled for the first time, the new half of a rotation) leaves
it as it is: no cache holds that token, so nothing remembered is wrong. Counting it too
made every enrolment anywhere in the province make every process forget every token, and
look all 20,000 up again over the next minute.

Read once a second by each process. The partial indexes of migration 0018 hold only the
revoked tokens and terminals and the tokens given an end, so it reads those few rows
whatever the size of the fleet."""

from __future__ import annotations

from sqlalchemy import Connection, text

_MARK = text(
    "SELECT (SELECT max(revoked_at) FROM terminals WHERE revoked_at IS NOT NULL), "
    "(SELECT count(*) FROM terminals WHERE revoked_at IS NOT NULL), "
    "(SELECT max(revoked_at) FROM terminal_tokens WHERE revoked_at IS NOT NULL), "
    "(SELECT count(*) FROM terminal_tokens WHERE revoked_at IS NOT NULL), "
    "(SELECT max(valid_until) FROM terminal_tokens WHERE valid_until IS NOT NULL)"
)


def revocation_mark(conn: Connection) -> tuple[object, ...]:
    """(latest and number of revoked terminals, latest and number of revoked tokens,
    latest end given to a token): equal twice means no token became invalid between."""
    return tuple(conn.execute(_MARK).one())

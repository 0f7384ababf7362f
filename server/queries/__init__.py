"""All SQL of the server. Each function takes a connection and runs inside the caller's
read or write (see server.db); handlers call them through `Database.read/write`."""

import uuid


def new_id() -> str:
    return uuid.uuid4().hex


def in_county(column: str) -> str:
    """SQL true when `column` (a county code) is the bind `:county`, or when `:county` is
    NULL (the province's account: every county). The CAST lets PostgreSQL type a NULL
    bind. See server/api/scope.py for where `:county` comes from."""
    return f"(CAST(:county AS TEXT) IS NULL OR {column} = :county)"

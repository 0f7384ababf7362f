"""All SQL of the server. Each function takes a connection and runs inside the caller's
read or write (see server.db); handlers call them through `Database.read/write`."""

import uuid


def new_id() -> str:
    return uuid.uuid4().hex


def for_county(condition: str) -> str:
    """SQL true when `condition` holds, or when the bind `:county` is NULL (the province's
    account: every county). The CAST lets PostgreSQL type a NULL bind. See
    server/api/scope.py for where `:county` comes from."""
    return f"(CAST(:county AS TEXT) IS NULL OR {condition})"


def in_county(column: str) -> str:
    """`for_county`: `column` (a county code) is `:county`."""
    return for_county(f"{column} = :county")

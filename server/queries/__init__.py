"""All SQL of the server. Each function takes a connection and runs inside the caller's
read or write (see server.db); handlers call them through `Database.read/write`."""

import uuid
from typing import Any

from sqlalchemy import Engine, TextClause, event, text


def new_id() -> str:
    return uuid.uuid4().hex


# The province's alternative in a county condition; the CAST lets PostgreSQL type a NULL bind.
PROVINCE_WIDE = "CAST(:county AS TEXT) IS NULL OR "


def for_county(condition: str) -> str:
    """SQL true when `condition` holds, or when the bind `:county` is NULL (the province's
    account: every county). See server/api/scope.py for where `:county` comes from.

    A statement holding it is run, for one county, without the province's alternative
    (`scope_statements`): SQLite plans `:county IS NULL OR u.county_code = :county` once
    for either value, so no county index can serve it, and a county's report would read
    the whole province's rows (measured: a county's terminal-month year at 2,110
    terminals, 1.9 s with the alternative, 0.07 s without)."""
    return f"({PROVINCE_WIDE}{condition})"


def in_county(column: str) -> str:
    """`for_county`: `column` (a county code) is `:county`."""
    return for_county(f"{column} = :county")


_one_county: dict[str, TextClause] = {}


def one_county(statement: TextClause) -> TextClause:
    """`statement` as run for one county: its `for_county` conditions without the
    province's alternative (made once per statement, then kept)."""
    found = _one_county.get(statement.text)
    if found is None:
        found = text(statement.text.replace(PROVINCE_WIDE, ""))
        bound = list(statement._bindparams.values())  # expanding binds and the like
        if bound:
            found = found.bindparams(*bound)
        _one_county[statement.text] = found
    return found


def scope_statements(engine: Engine) -> None:
    """Run every statement of `engine` that has a `for_county` condition, when its bind
    `county` is a county code, as `one_county(statement)`."""

    @event.listens_for(engine, "before_execute", retval=True)
    def _scoped(_conn: Any, clause: Any, multiparams: Any, params: Any, _options: Any
                ) -> tuple[Any, Any, Any]:
        if (params and params.get("county") is not None and isinstance(clause, TextClause)
                and PROVINCE_WIDE in clause.text):
            clause = one_county(clause)
        return clause, multiparams, params

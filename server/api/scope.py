"""The county an admin request speaks for, and the SQL that keeps a query inside it.

A county's account (its `county` set, server/auth/policy.py) sees and changes only what
belongs to its county: the units whose `county_code` is its code, their villages,
terminals, members and attendance, and the contents and sessions it made. The
province's account (`county` None) sees everything. Queries take the county as the
bind `:county` (None for the province) and filter with
`server.queries.in_county(column)`.
"""

from __future__ import annotations

from aiohttp import web

from server.auth.policy import admin_of


def county_of(request: web.Request) -> str | None:
    """The county code of the account sending `request`; None for the province's."""
    return admin_of(request).county

"""A second county beside the sample county (140121), and a county's account, for the
tests that check a county's account sees its county alone."""

from __future__ import annotations

from typing import Any

import aiohttp

from server.appkeys import DB
from server.queries import county
from tests.conftest import Server, add_account, admin_session

HOME = "140121"  # the sample county
OTHER = "140122"  # a second county of the same province
OTHER_UNIT = f"{OTHER}100"
OTHER_VILLAGES = (f"{OTHER}100001", f"{OTHER}100002")
OTHER_TERMINALS = tuple(f"T{v}" for v in OTHER_VILLAGES)


async def add_other_county(server: Server) -> None:
    """One township, two villages and a terminal point in each, in county OTHER."""
    def add(c: Any) -> None:
        county.upsert_units(c, [county.Unit(code=OTHER_UNIT, name="城关镇", kind="town")])
        county.upsert_villages(c, [county.Village(code=v, name=f"新村{n}", unit_code=OTHER_UNIT,
                                                  kind="village", terrain="plain")
                                   for n, v in enumerate(OTHER_VILLAGES, 1)])
        for n, (t, v) in enumerate(zip(OTHER_TERMINALS, OTHER_VILLAGES, strict=True), 1):
            county.add_terminal(c, t, v, f"新村{n}终端站点")

    await server.running.app[DB].write(add)


async def county_admin(server: Server, code: str = HOME, role: str = "admin") -> aiohttp.ClientSession:
    """A client speaking as an account of county `code` (close it when done)."""
    token = await add_account(server.running, f"county-{code}-{role}", role=role, county=code)
    return admin_session(server.running, token)

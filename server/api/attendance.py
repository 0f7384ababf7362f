"""Flagged attendance: the records stored but not counted, and a person's confirmation.

A record is flagged when the server could not place it in time with confidence, when it
ends after it was received or before it starts, or when it names people who are not on
its village's roster (`server.placement`). It counts in no figure until confirmed here.
A county's account lists and confirms the records of its county's terminals alone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from aiohttp import web

from server.api import models as m
from server.api.jsonio import json_response, read_json
from server.api.scope import county_of
from server.appkeys import CONFIG, DB
from server.errors import NotFound, Unprocessable
from server.placement import RECEIVE_SLACK
from server.queries import attendance as q
from shared.timeutil import from_db, to_db, utcnow


async def list_flagged(request: web.Request) -> web.Response:
    county = county_of(request)
    rows = await request.app[DB].read(lambda c: q.flagged(c, county))
    return json_response(m.FlaggedRecords(records=[m.FlaggedRecord(
        terminal_id=r.terminal_id, record_id=r.record_id, village_code=r.village_code,
        village_name=r.village_name, title=r.title, started_at=r.started_at,
        ended_at=r.ended_at, reported_started_at=r.reported_started_at,
        received_at=r.received_at, watched_seconds=round(r.watched_seconds),
        attendees=r.attendees, reasons=cast(list[m.FlagReason], r.flags.split(",")),  # flags holds only these
    ) for r in rows]))


async def confirm_flagged(request: web.Request) -> web.Response:
    terminal_id, record_id = request.match_info["terminal_id"], request.match_info["record_id"]
    body = await read_json(request, m.ConfirmIn)
    db, county = request.app[DB], county_of(request)
    row = await db.read(lambda c: q.flagged_record(c, terminal_id, record_id, county))
    if row is None:
        raise NotFound(f"terminal {terminal_id} has no flagged record {record_id}", code="unknown_record",
                       details={"terminal_id": terminal_id, "record_id": record_id})
    placed_start, placed_end = from_db(row.started_at), from_db(row.ended_at)
    start = body.started_at or placed_start
    received = from_db(row.received_at)
    try:
        end = start + (placed_end - placed_start)
    except OverflowError:
        end = received + 2 * RECEIVE_SLACK  # beyond year 9999: refused just below
    if end > received + RECEIVE_SLACK:
        local = received.astimezone(request.app[CONFIG].county_tz).strftime("%Y-%m-%d %H:%M")
        raise Unprocessable(
            f"the record was received at {to_db(received)} and cannot end after that: give an "
            "earlier start", code="bad_time", details={"received_at": local},
        )
    if start < received - timedelta(days=3660):
        raise Unprocessable("the start is more than ten years before the record was received",
                            code="bad_time")
    started, ended, now = to_db(start), to_db(end), to_db(utcnow())
    basis = request.app[CONFIG].rollup_basis
    await db.write(lambda c: q.confirm(c, row.id, started, ended, now, basis))
    return web.Response(status=204)

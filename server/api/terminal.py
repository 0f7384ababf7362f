"""Endpoints a village terminal calls: catalog, heartbeat, roster, attendance.

Every path names the terminal; the enrollment guard (a terminal token reaches only its
own paths) sits in front of this group.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import Connection

from server import catalog
from server.api.jsonio import json_response, read_json
from server.appkeys import ATTENDANCE_SLOTS, CATALOGS, CONFIG, DB, HEARTBEATS, SIGNER
from server.errors import NotFound, Unprocessable
from server.queries import attendance, county, fleet, members
from shared.protocol import (
    AttendanceAck,
    AttendanceBatch,
    Heartbeat,
    HeartbeatAck,
    Roster,
)
from shared.timeutil import utcnow


def _terminal_id(request: web.Request) -> str:
    return request.match_info["terminal_id"]


def _known(row: county.TerminalRow | None, terminal_id: str) -> county.TerminalRow:
    if row is None:
        raise NotFound(
            f"terminal {terminal_id} is not registered with this county server; "
            "ask the county admin to add it", code="unknown_terminal",
        )
    return row


async def _terminal(request: web.Request) -> county.TerminalRow:
    terminal_id = _terminal_id(request)
    return _known(await request.app[DB].read(lambda c: county.terminal(c, terminal_id)), terminal_id)


async def get_catalog(request: web.Request) -> web.Response:
    terminal_id, config, now = _terminal_id(request), request.app[CONFIG], utcnow()
    memo, period = request.app[CATALOGS], catalog.signing_period(config, now)
    inm = [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",") if tag.strip()]
    if inm:  # the usual poll: nothing changed, answered from memory
        told = memo.etag(terminal_id, await memo.version(request.app[DB]), period)
        if told is not None and told in inm:
            return web.Response(status=304, headers={"ETag": told, "Cache-Control": "no-cache"})

    def look(c: Connection) -> catalog.CatalogDraft:
        t = _known(county.terminal(c, terminal_id), terminal_id)
        return catalog.draft(c, config, t.id, t.village_code, t.unit_code, now)

    d = await request.app[DB].read_together(look)
    memo.remember(d, period)
    headers = {"ETag": d.etag, "Cache-Control": "no-cache"}
    if d.etag in inm:
        return web.Response(status=304, headers=headers)
    body = catalog.sign(d, request.app[SIGNER], config, now)
    return web.Response(body=body, headers=headers, content_type="application/json", charset="utf-8")


async def post_heartbeat(request: web.Request) -> web.Response:
    # The terminal is known: the guard in front took its own token. No read at all; the
    # beat waits for the next batch write (server.heartbeats).
    terminal_id = _terminal_id(request)
    hb = await read_json(request, Heartbeat)
    now = utcnow()
    version = await request.app[CATALOGS].version(request.app[DB])
    await request.app[HEARTBEATS].record(fleet.Beat(terminal_id, hb, now, request.remote))
    return json_response(HeartbeatAck(
        server_time=now, catalog_version=version,
        heartbeat_interval_seconds=request.app[CONFIG].heartbeat_interval,
    ))


async def get_roster(request: web.Request) -> web.Response:
    t = await _terminal(request)
    people = await request.app[DB].read(lambda c: members.roster(c, t.village_code))
    return json_response(Roster(
        village_code=t.village_code, village_name=t.village_name, members=people,
    ))


async def post_attendance(request: web.Request) -> web.Response:
    t = await _terminal(request)
    # A decoded batch of 100 records takes about 150 KB; with every terminal of the county
    # sending at once that was 30 MB held at a time, and the RSS kept it. Batches past the
    # limit wait unread.
    async with request.app[ATTENDANCE_SLOTS]:
        return await _ingest(request, t)


async def _ingest(request: web.Request, t: county.TerminalRow) -> web.Response:
    batch = await read_json(request, AttendanceBatch)
    # Nothing is refused for its times: a record that cannot be placed is stored flagged.
    now, clock = utcnow(), batch.terminal_clock
    prepared = attendance.prepare(batch, now)
    basis = request.app[CONFIG].rollup_basis
    del batch  # the decoded records weigh more than their rows: not held while the writer works
    result = await request.app[DB].write(
        lambda c: attendance.ingest(c, t.id, prepared, clock, now, basis)
    )
    if result.conflicts:
        raise Unprocessable(
            f"{len(result.conflicts)} record id(s) were stored before with different contents; "
            "nothing from this batch was stored", code="record_conflict",
            details={"record_ids": result.conflicts},
        )
    return json_response(AttendanceAck(accepted=result.accepted, duplicates=result.duplicates))

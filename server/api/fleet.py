"""Fleet status and session readiness: which terminals are up, and which are ready.

A county's account sees its county's terminals alone (and the totals of those), the
sessions held in its villages with its own terminals only, and the unenrolled boxes that
announce one of its villages."""

from __future__ import annotations

from datetime import timedelta

import msgspec
from aiohttp import web
from sqlalchemy import Connection

from server.api import models as m
from server.api.scope import county_of
from server.appkeys import CONFIG, DB, DISCOVERY, DISK
from server.placement import CLOCK_TOLERANCE
from server.queries import county, fleet
from shared.protocol import Heartbeat
from shared.timeutil import from_db, utcnow

_hb_decoder = msgspec.json.Decoder(Heartbeat)


def _fleet_terminal(row: fleet.FleetRow, online_after: timedelta, discovered: set[str]) -> m.FleetTerminal:
    hb = _hb_decoder.decode(row.heartbeat) if row.heartbeat else None
    seen = from_db(row.last_seen) if row.last_seen else None
    skew = round((hb.terminal_clock - seen).total_seconds(), 1) if hb and seen else None
    clock_problem = skew is not None and abs(skew) > CLOCK_TOLERANCE.total_seconds()
    status = hb.status if hb else None
    if clock_problem and status == "ok":  # the box thinks all is well; its clock says otherwise
        status = f"时钟偏差 {skew:+.0f} 秒 / clock off by {skew:+.0f} s"
    return m.FleetTerminal(
        id=row.id, name=row.name, village_code=row.village_code,
        village_name=row.village_name, unit_code=row.unit_code, unit_name=row.unit_name,
        terrain=row.terrain, online=seen is not None and utcnow() - seen <= online_after,
        last_seen=row.last_seen, last_address=row.last_address,
        software_version=hb.software_version if hb else None,
        disk_free=hb.disk_free if hb else None, disk_total=hb.disk_total if hb else None,
        outbox_backlog=hb.outbox_backlog if hb else None,
        catalog_version=hb.catalog_version if hb else None,
        clock_skew_seconds=skew,
        clock_problem=clock_problem,
        status=status,
        playing=hb.playback.sha256 if hb and hb.playback and hb.playback.state == "playing" else None,
        ready_items=row.ready_items, discovered=row.id in discovered,
        enrolled=row.enrolled_at is not None, revoked=row.revoked_at is not None,
        last_usb_contact=row.last_usb_contact,
    )


async def get_fleet(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    online_after = timedelta(seconds=config.heartbeat_interval * config.online_missed_heartbeats)
    db = request.app[DB]
    mine = county_of(request)
    rows = await db.read(lambda c: fleet.fleet_rows(c, mine))
    version = await db.read(county.catalog_version)
    discovery = request.app.get(DISCOVERY)
    discovered = discovery.discovered_terminal_ids() if discovery is not None else set()
    terminals = [_fleet_terminal(r, online_after, discovered) for r in rows]
    boxes = [seen for seen in (discovery.terminals.values() if discovery is not None else [])
             if not seen.terminal_id]
    if mine is not None and boxes:  # a county sees the boxes that name one of its villages
        villages = [seen.village for seen in boxes]
        ours = await db.read(lambda c: county.villages_in_county(c, villages, mine))
        boxes = [seen for seen in boxes if seen.village in ours]
    unenrolled = [
        m.SeenBox(name=seen.name, village=seen.village, version=seen.version,
                  addresses=list(seen.addresses), port=seen.port)
        for seen in boxes
    ]
    disk = await request.app[DISK].async_status()
    return web.Response(
        body=msgspec.json.encode(m.FleetSummary(
            total=len(terminals), online=sum(t.online for t in terminals),
            catalog_version=version, terminals=terminals, unenrolled=unenrolled,
            server_disk_full=disk.full, server_free_bytes=disk.free_bytes,
        )),
        content_type="application/json", charset="utf-8",
    )


def _readiness(conn: Connection, county_code: str | None) -> list[m.SessionReadiness]:
    parts = fleet.sessions_readiness(conn, utcnow() - timedelta(hours=12), county_code)
    out = []
    for s in parts.sessions:
        needs = parts.needs.get(s.id, [])
        terminals = []
        for t in parts.terminals.get(s.id, []):
            held = parts.ready.get(t.id, set())
            missing = [sha for sha in needs if sha not in held]
            terminals.append(m.TerminalReadiness(
                terminal_id=t.id, village_code=t.village_code,
                village_name=t.village_name, ready=not missing, missing=missing,
            ))
        out.append(m.SessionReadiness(
            session_id=s.id, title=s.title, starts_at=s.starts_at, items=needs,
            ready=sum(t.ready for t in terminals), total=len(terminals), terminals=terminals,
        ))
    return out


async def get_readiness(request: web.Request) -> web.Response:
    mine = county_of(request)
    sessions = await request.app[DB].read(lambda c: _readiness(c, mine))
    return web.Response(body=msgspec.json.encode(sessions), content_type="application/json",
                        charset="utf-8")

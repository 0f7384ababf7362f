"""Admin endpoints for content, distribution and the shape of the county."""

from __future__ import annotations

from datetime import date, datetime

import msgspec
from aiohttp import web
from sqlalchemy import Connection

from server import __version__
from server.api import models as m
from server.api.jsonio import json_response, local_day_start, query_date, read_json
from server.api.scope import county_of
from server.appkeys import CONFIG, DB, EGRESS, SERVER_ID, SIGNER
from server.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from server.queries import contents as q
from server.queries import county
from shared import signing
from shared.service import API_VERSION
from shared.timeutil import from_db, utcnow
from shared.typed import normalize_code


async def server_info(request: web.Request) -> web.Response:
    signer = request.app[SIGNER]
    challenge = request.query.get("challenge")
    proof = None
    if challenge is not None:
        if not 16 <= len(challenge) <= 128 or not challenge.isascii() or not challenge.isalnum():
            raise BadRequest("challenge must be 16 to 128 letters and digits",
                             details={"problem": "challenge 须为 16 到 128 个字母或数字"})
        proof = signer.sign(signing.proof_message(challenge))
    return json_response(m.ServerInfo(
        server_id=request.app[SERVER_ID], name=request.app[CONFIG].server_name,
        api_version=API_VERSION, software_version=__version__,
        key_fingerprint=signer.fingerprint, public_key=signer.public_key_b64,
        challenge_signature=proof, time_zone=request.app[CONFIG].time_zone,
    ))


# --- contents ------------------------------------------------------------------------


async def list_contents(request: web.Request) -> web.Response:
    """Contents in service: the province's and, for a county's account, its own."""
    county_code = county_of(request)
    rows = await request.app[DB].read(lambda c: q.list_contents(c, county_code))
    return json_response(msgspec.convert(rows, list[m.ContentOut], from_attributes=True))


async def get_content(request: web.Request) -> web.Response:
    content_id, county_code = request.match_info["content_id"], county_of(request)
    row = await request.app[DB].read(lambda c: q.get_content(c, content_id, county_code))
    if row is None:
        raise NotFound(f"no content {content_id}", details={"what": "内容", "id": content_id})
    return json_response(msgspec.convert(row, m.ContentOut, from_attributes=True))


def _changeable(c: Connection, content_id: str, mine: str | None) -> q.ContentRow:
    """The content `mine`'s account may change or retire: any for the province's, its own
    for a county's (the province's contents it may only use: 403 `province_content`)."""
    row = q.get_content(c, content_id, mine)
    if row is None:
        raise NotFound(f"no content {content_id}", details={"what": "内容", "id": content_id})
    if mine is not None and row.county != mine:
        raise Forbidden("this content is the province's: a county's account may use it, "
                        "only the province's account may change or retire it",
                        code="province_content", details={"title": row.title})
    return row


async def patch_content(request: web.Request) -> web.Response:
    """Change a content's title, kind or description; with `whole_province` (the
    province's account only) a county's own content becomes the province's, for every
    county to use."""
    content_id = request.match_info["content_id"]
    body = await read_json(request, m.ContentPatch)
    mine = county_of(request)
    if body.whole_province is not None:
        if mine is not None:
            raise Forbidden("only the province's account makes a content the whole province's",
                            code="province_only", details={"county": mine})
        if not body.whole_province:
            raise Unprocessable("a content of the province's stays the province's: "
                                "whole_province may only be true", code="stays_province")
    db = request.app[DB]
    kind = body.kind.value if body.kind else None

    def change(c: Connection) -> None:
        _changeable(c, content_id, mine)
        q.update_content(c, content_id, body.title, kind, body.description)
        if body.whole_province:
            q.to_province(c, content_id)

    await db.write(change)
    row = await db.read(lambda c: q.get_content(c, content_id, mine))
    return json_response(msgspec.convert(row, m.ContentOut, from_attributes=True))


async def content_reach(request: web.Request) -> web.Response:
    """Per content in service: assignments, terminals they reach, terminals holding it,
    bytes sent from this server and bytes terminals took in from each other. For a
    county's account the figures of its county (the bytes sent from this server are the
    province's alone: 0 and `bytes_from_server_known` false)."""
    county_code = county_of(request)
    if county_code is None:
        await request.app[EGRESS].flush()  # the figures include what was sent a moment ago
    reach = await request.app[DB].read(lambda c: q.content_reach(c, county_code))
    return json_response(msgspec.convert(reach, list[m.ContentReach], from_attributes=True))


async def content_usage(request: web.Request) -> web.Response:
    """Where a content is used; for a county's account, within its county."""
    content_id = request.match_info["content_id"]
    county_code = county_of(request)
    now = utcnow()
    row = await request.app[DB].read(lambda c: q.content_usage(c, content_id, now, county_code))
    if row is None:
        raise NotFound(f"no content {content_id}")
    return json_response(msgspec.convert(row, m.ContentUsage, from_attributes=True))


async def retire_content(request: web.Request) -> web.Response:
    """Retire a content: see `queries.contents.retire_content` for what goes."""
    content_id, mine = request.match_info["content_id"], county_of(request)
    now = utcnow()

    def retire(c: Connection) -> None:
        _changeable(c, content_id, mine)
        if not q.retire_content(c, content_id, now):
            raise Conflict(f"content {content_id} is retired already", code="already_retired")

    await request.app[DB].write(retire)
    return web.Response(status=204)


# --- assignments ---------------------------------------------------------------------


async def list_assignments(request: web.Request) -> web.Response:
    """Every assignment; for a county's account those reaching its county."""
    county_code = county_of(request)
    rows = await request.app[DB].read(lambda c: q.list_assignments(c, county_code))
    return json_response(msgspec.convert(rows, list[m.AssignmentOut], from_attributes=True))


async def create_assignment(request: web.Request) -> web.Response:
    """Assign a content to every terminal (scope "county", no target), one county (scope
    "county", its code: the province's account), a township, a village or a terminal. A
    county's account assigns inside its county: "county" means its own."""
    body = await read_json(request, m.AssignmentIn)
    mine = county_of(request)

    def add(c: Connection) -> str:
        content = q.get_content(c, body.content_id, mine)
        if content is None:
            raise Unprocessable(f"no content {body.content_id}", code="unknown_content",
                                details={"ids": [body.content_id]})
        target = normalize_code(body.target or "")
        if body.scope == "county" and mine is not None and target in ("", mine):
            target = mine
        if body.scope != "county" and not target:
            raise Unprocessable(f"an assignment to a {body.scope} needs a target code",
                                code="missing_target")
        lies_in = q.target_county(c, body.scope, target)
        if lies_in is None or (mine is not None and lies_in != mine):
            raise Unprocessable(f"no {body.scope} {target} in this county", code="unknown_target")
        if content.county is not None and (lies_in != content.county or target == ""):
            _stays_home(c, content.county, content.title)
        return q.add_assignment(c, body.content_id, body.scope, target, body.needed_by)

    assignment_id = await request.app[DB].write(add)
    return json_response(m.Created(id=assignment_id), status=201)


async def delete_assignment(request: web.Request) -> web.Response:
    assignment_id = request.match_info["assignment_id"]
    mine = county_of(request)
    unknown = NotFound(f"no assignment {assignment_id}",
                       details={"what": "分发安排", "id": assignment_id})

    def delete(c: Connection) -> None:
        lies_in = q.assignment_county(c, assignment_id)
        if lies_in is None or (mine is not None and lies_in not in ("", mine)):
            raise unknown
        if mine is not None and lies_in == "":
            raise Forbidden("this assignment reaches every county: the province's to withdraw",
                            code="province_assignment", details={"county": mine})
        if not q.delete_assignment(c, assignment_id):
            raise unknown

    await request.app[DB].write(delete)
    return web.Response(status=204)


# --- sessions ------------------------------------------------------------------------


async def list_sessions(request: web.Request) -> web.Response:
    """All sessions, or with `?since=YYYY-MM-DD` those from that county day on."""
    since = None
    if "since" in request.query:
        since = local_day_start(query_date(request, "since", date.today()),
                                request.app[CONFIG].county_tz)
    county_code = county_of(request)
    rows = await request.app[DB].read(lambda c: q.list_sessions(c, since, county_code))
    return json_response(msgspec.convert(rows, list[m.SessionOut], from_attributes=True))


async def get_session(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    county_code = county_of(request)
    row = await request.app[DB].read(lambda c: q.get_session(c, session_id, county_code))
    if row is None:
        raise NotFound(f"no session {session_id}")
    return json_response(msgspec.convert(row, m.SessionOut, from_attributes=True))


def _stays_home(c: Connection, owner: str, title: str) -> None:
    """A county's own content goes to that county's terminals alone, until the province
    makes it the whole province's (PATCH whole_province): 422 `county_content`."""
    raise Unprocessable(
        f"{title} is county {owner}'s own: it goes to that county alone; make it the whole "
        "province's first (PATCH whole_province)",
        code="county_content", details={"county": county.county_label(c, owner), "title": title})


def _contents_stay_home(c: Connection, content_ids: list[str], villages: list[str]) -> None:
    """The province's session of a county's own contents is for that county's villages."""
    places = q.village_counties(c, villages)
    for owner, title in q.owned_contents(c, content_ids):
        if places - {owner}:
            _stays_home(c, owner, title)


def _not_past(starts_at: datetime) -> None:
    if starts_at < utcnow():
        raise Unprocessable(f"the session starts in the past ({starts_at.isoformat()}); "
                            "choose a time to come", code="in_the_past")


async def create_session(request: web.Request) -> web.Response:
    body = await read_json(request, m.SessionIn)
    _not_past(body.starts_at)
    villages = [normalize_code(v) for v in body.village_codes]  # typed codes: NFKC, no spaces
    county_code = county_of(request)  # a county's account: its villages only, its session

    def add(c: Connection) -> str:
        if missing := q.missing_contents(c, body.content_ids, county_code):
            raise Unprocessable(f"no content {', '.join(missing)}", code="unknown_content",
                                details={"ids": list(missing)})
        if missing := q.missing_villages(c, villages, county_code):
            raise Unprocessable(f"no village {', '.join(missing)}", code="unknown_village",
                                details={"codes": list(missing)})
        _contents_stay_home(c, body.content_ids, villages)
        return q.add_session(c, body.title, body.starts_at, body.content_ids, villages, county_code)

    session_id = await request.app[DB].write(add)
    return json_response(m.Created(id=session_id), status=201)


async def patch_session(request: web.Request) -> web.Response:
    """Change an upcoming session; a session that has started is history and stays."""
    session_id = request.match_info["session_id"]
    body = await read_json(request, m.SessionPatch)
    if body.starts_at is not None:
        _not_past(body.starts_at)
    county_code = county_of(request)

    def change(c: Connection) -> None:
        starts = q.session_starts(c, session_id, county_code)
        if starts is None:
            raise NotFound(f"no session {session_id}")
        if from_db(starts) < utcnow():
            raise Conflict("this session has already taken place; it cannot be changed",
                           code="session_past")
        if body.content_ids and (missing := q.missing_contents(c, body.content_ids, county_code)):
            raise Unprocessable(f"no content {', '.join(missing)}", code="unknown_content",
                                details={"ids": list(missing)})
        if body.village_codes and (missing := q.missing_villages(c, body.village_codes, county_code)):
            raise Unprocessable(f"no village {', '.join(missing)}", code="unknown_village")
        if body.content_ids or body.village_codes:
            was = q.get_session(c, session_id, county_code)
            assert was is not None  # its start was read in this same write
            _contents_stay_home(c, body.content_ids or [i.id for i in was.items],
                                body.village_codes or was.villages)
        q.update_session(c, session_id, body.title, body.starts_at, body.content_ids,
                         body.village_codes)

    await request.app[DB].write(change)
    row = await request.app[DB].read(lambda c: q.get_session(c, session_id))
    return json_response(msgspec.convert(row, m.SessionOut, from_attributes=True))


async def session_roll_call(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    db, county_code = request.app[DB], county_of(request)
    if await db.read(lambda c: q.session_starts(c, session_id, county_code)) is None:
        raise NotFound(f"no session {session_id}")
    rows = await db.read(lambda c: q.session_roll_call(c, session_id))
    return json_response(msgspec.convert(rows, list[m.RollCallEntry], from_attributes=True))


async def delete_session(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    county_code = county_of(request)
    if not await request.app[DB].write(lambda c: q.delete_session(c, session_id, county_code)):
        raise NotFound(f"no session {session_id}", details={"what": "学习场次", "id": session_id})
    return web.Response(status=204)


# --- county --------------------------------------------------------------------------


async def list_units(request: web.Request) -> web.Response:
    """Every unit; for a county's account its county's."""
    mine = county_of(request)
    rows = await request.app[DB].read(lambda c: county.list_units(c, mine))
    return json_response(msgspec.convert(rows, list[m.UnitOut], from_attributes=True))


async def list_villages(request: web.Request) -> web.Response:
    """Every village (of `?unit=`); for a county's account its county's: another
    county's unit has none, as an unknown one."""
    unit, mine = request.query.get("unit"), county_of(request)
    rows = await request.app[DB].read(lambda c: county.list_villages(c, unit, mine))
    return json_response(msgspec.convert(rows, list[m.VillageOut], from_attributes=True))


async def create_terminal(request: web.Request) -> web.Response:
    """Register a terminal point; a county's account in its own villages (another
    county's village is refused as an unknown one)."""
    body = await read_json(request, m.TerminalIn)
    village_code = normalize_code(body.village_code)
    terminal_id = body.id or county.terminal_id_for(village_code)
    mine = county_of(request)

    def add(c: Connection) -> None:
        v = county.village(c, village_code, mine)
        if v is None:
            raise Unprocessable(f"no village {village_code}", code="unknown_village",
                                details={"codes": [village_code]})
        if not county.add_terminal(c, terminal_id, village_code, body.name or v.name):
            raise Conflict(f"terminal {terminal_id} exists already", code="terminal_exists",
                           details={"id": terminal_id})

    await request.app[DB].write(add)
    return json_response(m.Created(id=terminal_id), status=201)

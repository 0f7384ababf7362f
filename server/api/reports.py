"""Roster import and the county's reports, each as JSON or as CSV (`?format=csv`).

A county's account (server/api/scope.py) imports members into its county's villages
only and sees its county alone in every report here; the province's account sees the
whole province."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections import defaultdict
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path

import msgspec
from aiohttp import web

from server import roster
from server.api import models as m
from server.api.jsonio import (
    json_response,
    local_day_start,
    local_text,
    query_date,
    read_json,
    table_response,
    wants_csv,
)
from server.api.params import flag_query
from server.api.scope import county_of
from server.appkeys import CONFIG, DB
from server.db import Database
from server.errors import BadRequest, NotFound, PayloadTooLarge, Unprocessable
from server.queries import county, trained_months
from server.queries import members as mq
from server.queries import province as pq
from server.queries import reports as rq
from shared.timeutil import from_db, to_db, utcnow
from shared.typed import NumberError, normalize_code, strict_int

MAX_ROSTER_BYTES = 128 << 20  # a 200,000-row CSV is about 30 MB
MAX_MONTHS = 36  # of the terminal months report
EMPTY_BODY_ZH = "请求内容是空的；请把花名册文件（CSV、XLSX 或 XLS）作为请求内容发送"
RULE_SESSIONS = 2  # the county's rule: at least 2 sessions and 20 hours a month
RULE_HOURS = 20.0


async def import_members(request: web.Request) -> web.Response:
    """POST the roster file as the body (`?dry_run=1`: check every row, store nothing).

    The body is spooled to a file under the data directory and read from there twice,
    streaming (see server.roster), so memory stays flat whatever the roster's size.
    """
    dry_run = flag_query(request, "dry_run")
    too_large = PayloadTooLarge(
        f"a roster file may be at most {MAX_ROSTER_BYTES >> 20} MB; import it in several files",
        details={"limit": f"{MAX_ROSTER_BYTES >> 20} MB"})
    if request.content_length is not None and request.content_length > MAX_ROSTER_BYTES:
        raise too_large
    db, data_dir = request.app[DB], request.app[CONFIG].data_dir
    spool_dir = await asyncio.to_thread(scratch_dir, data_dir)
    fd, name = await asyncio.to_thread(tempfile.mkstemp, dir=spool_dir, suffix=".roster")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as spool:
            size = 0
            async for chunk in request.content.iter_chunked(1 << 20):
                size += len(chunk)
                if size > MAX_ROSTER_BYTES:
                    raise too_large
                await asyncio.to_thread(spool.write, chunk)
        if size == 0:
            raise Unprocessable("the body is empty; send the roster file (CSV, XLSX or XLS) as the body",
                                code="empty_roster", details={"problem": EMPTY_BODY_ZH})
        report = await import_roster(db, data_dir, path, dry_run=dry_run,
                                     county=county_of(request))
    finally:
        await asyncio.to_thread(path.unlink, True)
    return json_response(report)


def scratch_dir(data_dir: Path) -> Path:
    """`imports/` in the data directory: spooled rosters and their scratch files (blocking)."""
    path = data_dir / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def import_roster(db: Database, data_dir: Path, path: Path, *, dry_run: bool,
                        county: str | None = None) -> m.ImportReport:
    """Check `path` row by row, then (unless `dry_run`) store it in one transaction;
    scratch files go under `data_dir`. For a county's account (`county` set) a row
    naming a village of another county is refused as an unknown village is, and a row
    whose number is a member of another county is refused too: the file is read a second
    time, only when the first reading staged such numbers.

    Raises Unprocessable (`bad_roster`, `roster_too_big`) for a file that cannot be read.
    """
    villages = await db.read(lambda c: mq.village_codes(c, county))
    scratch = await asyncio.to_thread(scratch_dir, data_dir)
    fd, name = await asyncio.to_thread(tempfile.mkstemp, dir=scratch, suffix=".staged")
    os.close(fd)
    staging = Path(name)
    try:
        checked = await asyncio.to_thread(roster.check, path, villages, staging)
        if county is not None and checked.accepted:
            elsewhere = await db.read(
                lambda c: mq.elsewhere(c, roster.staged_numbers(staging), county))
            if elsewhere:
                checked = await asyncio.to_thread(roster.check, path, villages, staging, elsewhere)
        if dry_run:
            new = await db.read(lambda c: roster.count_new(c, staging)) if checked.accepted else 0
            added, updated = new, checked.accepted - new
        elif checked.accepted:
            added, updated = await db.write(lambda c: roster.store(c, staging))
        else:
            added, updated = 0, 0
    except roster.RosterFormatError as e:
        raise Unprocessable(str(e), code=e.code, details=e.details) from None
    finally:
        await asyncio.to_thread(staging.unlink, True)
    return m.ImportReport(
        added=added, updated=updated, rejected=checked.rejected,
        errors=[_problem(r) for r in checked.errors], dry_run=dry_run,
        skipped_title_rows=checked.skipped_title_rows,
        warnings=[_problem(r) for r in checked.warnings],
        rows=[m.ImportRow(line=r.line, member_no=r.member_no, name=r.name,
                          village_code=r.village_code, status=r.status, message=r.message)
              for r in checked.rows],
        rows_truncated=checked.truncated,
    )


def _problem(r: roster.RowResult) -> m.RowProblem:
    return m.RowProblem(row=r.line, member_no=r.member_no, message=r.message)


def _period(request: web.Request) -> tuple[datetime, datetime]:
    tz = request.app[CONFIG].county_tz
    today = utcnow().astimezone(tz).date()
    start = query_date(request, "from", date(today.year, 1, 1))
    end = query_date(request, "to", today)
    if end < start:
        raise Unprocessable("the period ends before it starts (to < from)", code="period_reversed",
                            details={"problem": "结束日期（to）早于开始日期（from）"})
    return local_day_start(start, tz), local_day_start(end + timedelta(days=1), tz)


def _days(start: datetime, end: datetime, tz: tzinfo) -> tuple[str, str]:
    """The county days ("YYYY-MM-DD", both included) of a period [start, end) that
    begins and ends at county midnights."""
    return (start.astimezone(tz).date().isoformat(),
            (end - timedelta(seconds=1)).astimezone(tz).date().isoformat())


def _rate(trained: int, members: int) -> float:
    return round(trained / members, 4) if members else 0.0


async def coverage(request: web.Request) -> web.Response:
    start, end = _period(request)
    min_seconds = request.app[CONFIG].counted_min_seconds
    first, last = _days(start, end, request.app[CONFIG].county_tz)
    county_code = county_of(request)
    rows = await request.app[DB].read(lambda c: rq.coverage_by_village(c, first, last, county_code))
    units: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    unit_names: dict[str, str] = {}
    villages = []
    for r in rows:
        villages.append(m.CoverageRow(level="village", code=r.code, name=r.name,
                                      members=r.members, trained=r.trained,
                                      rate=_rate(r.trained, r.members)))
        units[r.unit_code][0] += r.members
        units[r.unit_code][1] += r.trained
        unit_names[r.unit_code] = r.unit_name
    total_m = sum(v[0] for v in units.values())
    total_t = sum(v[1] for v in units.values())
    out = [m.CoverageRow(level="county", code=county_code or "", name="全县", members=total_m,
                         trained=total_t, rate=_rate(total_t, total_m))]
    out += [m.CoverageRow(level="unit", code=code, name=unit_names[code], members=v[0],
                          trained=v[1], rate=_rate(v[1], v[0])) for code, v in sorted(units.items())]
    out += villages
    if wants_csv(request):
        level_names = {"county": "县", "unit": "乡镇", "village": "村（社区）"}
        return await table_response(
            request, "coverage", ["层级", "代码", "名称", "党员数", "参学人数", "受训率"],
            ([level_names[r.level], r.code, r.name, r.members, r.trained, f"{r.rate:.2%}"]
             for r in out),
        )
    return json_response(m.CoverageReport(
        start=start.isoformat(), end=end.isoformat(), min_seconds=min_seconds, rows=out,
    ))


async def province(request: web.Request) -> web.Response:
    """Per county: terminals online, coverage over the period (`from`, `to`, as the
    coverage report), readiness for the sessions of the next `session_horizon_days`."""
    config = request.app[CONFIG]
    start, end = _period(request)
    first, last = _days(start, end, config.county_tz)
    now = utcnow()
    online_since = now - timedelta(seconds=config.heartbeat_interval * config.online_missed_heartbeats)
    until = now + timedelta(days=config.session_horizon_days)
    await trained_months.fold_all(request.app[DB])  # what arrived since the last fold
    rows = await request.app[DB].read(lambda c: pq.county_figures(
        c, first_day=first, last_day=last, online_since=to_db(online_since), now=to_db(now),
        until=to_db(until)))
    counties = [_county_row(r.code, r.name or r.code, r) for r in rows]
    total = _county_row("", "全省", pq.CountyFigures(
        code="", name="全省", **{k: sum(getattr(r, k) for r in rows) for k in (
            "villages", "terminals", "online", "members", "trained", "sessions", "due", "ready")}))
    if wants_csv(request):
        return await table_response(
            request, "province",
            ["县代码", "县", "村（社区）", "终端站点", "在线", "党员数", "参学人数", "受训率",
             "近期场次", "应到站点", "已就绪", "就绪率"],
            ([r.code, r.name, r.villages, r.terminals, r.online, r.members, r.trained,
              f"{r.coverage_rate:.2%}", r.sessions_ahead, r.due, r.ready, f"{r.readiness_rate:.2%}"]
             for r in [total, *counties]),
        )
    return json_response(m.ProvinceReport(
        start=start.isoformat(), end=end.isoformat(), horizon_days=config.session_horizon_days,
        total=total, counties=counties,
    ))


def _county_row(code: str, name: str, f: pq.CountyFigures) -> m.CountyRow:
    return m.CountyRow(
        code=code, name=name, villages=f.villages, terminals=f.terminals, online=f.online,
        members=f.members, trained=f.trained, coverage_rate=_rate(f.trained, f.members),
        sessions_ahead=f.sessions, due=f.due, ready=f.ready, readiness_rate=_rate(f.ready, f.due),
    )


async def list_counties(request: web.Request) -> web.Response:
    """The counties held, by code: what the province's account may look at one by one."""
    rows = await request.app[DB].read(county.counties)
    return json_response([m.County(code=code, name=name) for code, name in rows])


async def name_county(request: web.Request) -> web.Response:
    """PUT a county's name (`{"name": "清徐县"}`); 404 for a county no unit belongs to."""
    code = request.match_info["county_code"]
    body = await read_json(request, m.CountyName)
    if not await request.app[DB].write(lambda c: county.name_county(c, code, body.name.strip())):
        raise NotFound(f"no county {code}: load its townships first",
                       code="unknown_county", details={"code": code})
    return json_response(m.CountyName(name=body.name.strip()))


MAX_MATCHES = 50
MAX_QUERY = 64  # characters of ?q=


async def search_members(request: web.Request) -> web.Response:
    """Members by number (prefix) or name (part of it): `?q=`; at most MAX_MATCHES."""
    raw = request.query.get("q", "")
    text = raw.strip()
    if not text:
        raise BadRequest("give ?q= a member number or part of a name", code="empty_query")
    if len(raw) > MAX_QUERY:
        raise BadRequest("the search text is longer than 64 characters")
    county_code = county_of(request)
    rows = await request.app[DB].read(lambda c: mq.search(c, text, MAX_MATCHES + 1, county_code))
    matches = [m.MemberMatch(member_no=r.member_no, name=r.name, village_code=r.village_code,
                             village_name=r.village_name, unit_name=r.unit_name, branch=r.branch)
               for r in rows]
    return json_response(m.MemberSearch(matches=matches[:MAX_MATCHES],
                                        truncated=len(matches) > MAX_MATCHES))


async def member_record(request: web.Request) -> web.Response:
    member_no = normalize_code(request.match_info["member_no"])
    db, county_code = request.app[DB], county_of(request)
    who = await db.read(lambda c: mq.member(c, member_no, county_code))
    if who is None:
        raise NotFound(f"no member with number {member_no} in the roster",
                       code="unknown_member", details={"id": member_no})
    rows = await db.read(lambda c: rq.member_sessions(c, member_no))
    min_seconds = request.app[CONFIG].counted_min_seconds
    entries = [m.LearningEntry(
        started_at=r.started_at, ended_at=r.ended_at, terminal_id=r.terminal_id,
        village_code=r.village_code, village_name=r.village_name, title=r.title,
        session_id=r.session_id, contents=r.contents or "",
        watched_seconds=r.watched_seconds, counted=r.watched_seconds >= min_seconds,
    ) for r in rows]
    config = request.app[CONFIG]
    tz = config.county_tz
    year = utcnow().astimezone(tz).year
    this_year = [e for e in entries
                 if e.counted and from_db(e.started_at).astimezone(tz).year == year]
    record = m.LearningRecord(
        member_no=member_no, name=who.name, village_code=who.village_code,
        village_name=who.village_name, sessions=len(entries),
        counted_sessions=sum(e.counted for e in entries),
        watched_seconds=round(sum(e.watched_seconds for e in entries), 1), entries=entries,
        year=year, year_sessions=len(this_year),
        year_watched_seconds=round(sum(e.watched_seconds for e in this_year), 1),
        target_sessions=config.member_target_sessions, target_hours=config.member_target_hours,
    )
    if wants_csv(request):
        return await table_response(
            request, f"member-{member_no}",
            ["序号", "姓名", "开始时间", "结束时间", "站点", "村（社区）", "学习内容", "观看分钟",
             "计入受训"],
            ([member_no, who.name, local_text(from_db(e.started_at), tz),
              local_text(from_db(e.ended_at), tz), e.terminal_id, e.village_name,
              e.contents or e.title, round(e.watched_seconds / 60, 1), "是" if e.counted else "否"]
             for e in entries),
        )
    return json_response(record)


MAX_RECORDS = 200


async def terminal_records(request: web.Request) -> web.Response:
    """A terminal's latest attendance records (`?limit=`, 1..200, default 50), newest first."""
    terminal_id = request.match_info["terminal_id"]
    try:
        limit = strict_int(request.query.get("limit", "50"), "limit", 1, MAX_RECORDS)
    except NumberError:
        raise BadRequest("limit must be a whole number from 1 to 200",
                         details={"problem": "参数 limit 应为 1 到 200 的整数"}) from None
    if not 1 <= limit <= MAX_RECORDS:
        raise BadRequest("limit must be a whole number from 1 to 200")
    county_code = county_of(request)
    rows = await request.app[DB].read(
        lambda c: rq.terminal_records(c, terminal_id, limit, county_code))
    if rows is None:
        raise NotFound(f"no terminal {terminal_id}", code="unknown_terminal")
    return json_response(msgspec.convert(rows, list[m.TerminalRecord], from_attributes=True))


def _months(start: datetime, end: datetime, tz: tzinfo) -> list[rq.Month]:
    """The county months [start, end) touches, each cut to the period (UTC instants);
    422 `period_too_long` beyond MAX_MONTHS, counted before any is made."""
    first = start.astimezone(tz).date().replace(day=1)
    last = (end - timedelta(seconds=1)).astimezone(tz).date()
    if (last.year - first.year) * 12 + last.month - first.month + 1 > MAX_MONTHS:
        raise Unprocessable("choose a period of at most 36 months", code="period_too_long",
                            details={"months": MAX_MONTHS})
    out, d = [], first
    while d <= last:
        following = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        out.append(rq.Month(f"{d.year:04d}-{d.month:02d}", max(start, local_day_start(d, tz)),
                            min(end, local_day_start(following, tz))))
        d = following
    return out


async def terminal_months(request: web.Request) -> web.Response:
    start, end = _period(request)
    months = _months(start, end, request.app[CONFIG].county_tz)
    db = request.app[DB]
    first, last = _days(start, end, request.app[CONFIG].county_tz)
    county_code = county_of(request)
    rows = await db.read(lambda c: rq.terminal_months(c, first, last, county_code))
    terminals = await db.read(lambda c: rq.all_terminals(c, county_code))
    held = {(r.terminal_id, r.month): r for r in rows}
    out = []
    for t in terminals:
        for month in (mo.month for mo in months):
            r = held.get((t.id, month))
            sessions = r.sessions if r else 0
            hours = round((r.watched_seconds if r else 0.0) / 3600, 2)
            out.append(m.TerminalMonth(
                terminal_id=t.id, village_code=t.village_code,
                village_name=t.village_name, month=month, sessions=sessions, hours=hours,
                attendances=r.attendances if r else 0,
                meets_rule=sessions >= RULE_SESSIONS and hours >= RULE_HOURS,
            ))
    if wants_csv(request):
        return await table_response(
            request, "terminal-months",
            ["站点", "村（社区）代码", "村（社区）", "月份", "场次", "学时", "参学人次", "达标"],
            ([r.terminal_id, r.village_code, r.village_name, r.month, r.sessions, r.hours,
              r.attendances, "是" if r.meets_rule else "否"] for r in out),
        )
    return json_response(m.TerminalMonthsReport(
        rule_sessions=RULE_SESSIONS, rule_hours=RULE_HOURS, rows=out,
    ))

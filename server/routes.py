"""Every endpoint, declared once: the router and the OpenAPI document are both built
from this table, so the document cannot forget a route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from aiohttp import web

from server import bundles as bundle_reports
from server.api import (
    admin,
    attendance,
    auth,
    blobs,
    bundles,
    enrollment,
    fleet,
    peers,
    reports,
    terminal,
    tus,
)
from server.api import models as m
from server.appkeys import COUNTY_ROUTES
from shared import peers as shared_peers
from shared import protocol as p

Group = Literal["public", "uploads", "blobs", "admin", "terminal"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    group: Group
    summary: str
    request: type | None = None
    request_media: str = "application/json"
    request_optional: bool = False  # the body may be left out (the model's defaults apply)
    response: object | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    csv: bool = False
    query: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    county: bool = False  # keeps a county's account inside its county (server/auth/policy.py)


A = "/api/v1/admin"
T = "/api/v1/terminals/{terminal_id}"
U = tus.UPLOADS_PATH

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/v1/server", admin.server_info, "public",
             "Who this server is: id, name, API version, signing key; with ?challenge= also "
             "a signature proving it holds the key", response=m.ServerInfo, query=("challenge",),
             errors=(400,)),
    Endpoint("POST", "/api/v1/auth/login", auth.login, "public",
             "Log in to the console: sets an HttpOnly session cookie, returns the CSRF token",
             request=auth.LoginIn, response=auth.SessionOut, errors=(400, 401, 415, 422, 429)),
    Endpoint("POST", "/api/v1/auth/logout", auth.logout, "admin", "End the console session",
             status=204, errors=(401, 403), county=True),
    Endpoint("GET", "/api/v1/auth/session", auth.current, "admin",
             "Who is logged in, their role, county and CSRF token", response=auth.SessionOut,
             errors=(401,), county=True),
    Endpoint("GET", A + "/tokens", auth.list_tokens, "admin", "API tokens (never the secrets)",
             response=list[auth.TokenOut], errors=(401,), county=True),
    Endpoint("POST", A + "/tokens", auth.create_token, "admin",
             "Make an API token for scripts and tus clients; shown once", request=auth.TokenIn,
             response=auth.TokenCreated, status=201, errors=(401, 403, 415, 422), county=True),
    Endpoint("DELETE", A + "/tokens/{token_id}", auth.revoke_token, "admin", "Revoke an API token",
             status=204, errors=(401, 403, 404), county=True),
    # tus 1.0.0: core + creation + checksum + termination
    Endpoint("OPTIONS", U, tus.options, "uploads", "tus capabilities", status=204),
    Endpoint("POST", U, tus.create, "uploads", "Create an upload (tus creation)", status=201,
             errors=(400, 412, 413, 507), county=True, headers={
                 "Tus-Resumable": "1.0.0", "Upload-Length": "the file's size in bytes",
                 "Upload-Metadata": "title, kind, filename, description (tus: key base64value, ...)"}),
    Endpoint("HEAD", U + "/{upload_id}", tus.head, "uploads", "Offset of an upload",
             errors=(404, 410, 503), county=True),
    Endpoint("PATCH", U + "/{upload_id}", tus.patch, "uploads",
             "Append bytes at Upload-Offset; the last chunk makes the content", status=204,
             request=bytes, request_media="application/offset+octet-stream",
             errors=(400, 404, 409, 410, 412, 413, 415, 422, 460, 503, 507), county=True, headers={
                 "Tus-Resumable": "1.0.0", "Upload-Offset": "where this chunk starts",
                 "Upload-Checksum": "sha1 or sha256 of this chunk, base64"}),
    Endpoint("DELETE", U + "/{upload_id}", tus.delete, "uploads", "Cancel an upload (tus termination)",
             status=204, errors=(404, 409, 410, 412), county=True,
             headers={"Tus-Resumable": "1.0.0"}),
    Endpoint("POST", U + "/{upload_id}", tus.method_override, "uploads",
             "PATCH or DELETE for clients that can only POST: X-HTTP-Method-Override (tus core)",
             status=204, request=bytes, request_media="application/offset+octet-stream",
             errors=(400, 404, 405, 409, 410, 412, 413, 415, 422, 460, 507), county=True,
             headers={"X-HTTP-Method-Override": "PATCH or DELETE", "Tus-Resumable": "1.0.0",
                      "Upload-Offset": "with PATCH: where this chunk starts",
                      "Upload-Checksum": "sha1 or sha256 of this chunk, base64"}),
    Endpoint("GET", "/blobs/{sha256}", blobs.blob, "blobs",
             "Content bytes by sha256, with Range/If-Range (RFC 9110); with media in a bucket, "
             "307 to a short-lived URL of the object", response=bytes,
             errors=(304, 307, 404, 412, 416, 503)),
    Endpoint("HEAD", "/blobs/{sha256}", blobs.blob, "blobs", "Content size and ETag",
             errors=(404, 503)),
    # admin
    Endpoint("GET", A + "/contents", admin.list_contents, "admin",
             "Contents in service (a county's account: the province's and its own)",
             response=list[m.ContentOut], county=True),
    Endpoint("GET", A + "/contents/reach", admin.content_reach, "admin",
             "Per content: assignments, terminals they reach, terminals holding it "
             "(a county's account: its county's)", response=list[m.ContentReach], county=True),
    Endpoint("GET", A + "/contents/{content_id}/usage", admin.content_usage, "admin",
             "Where a content is assigned, its upcoming sessions, which terminals hold it "
             "(a county's account: within its county)", response=m.ContentUsage,
             errors=(404,), county=True),
    Endpoint("POST", A + "/contents/{content_id}/retire", admin.retire_content, "admin",
             "Retire a content: withdraw its assignments, take it out of upcoming sessions "
             "and every catalog (terminals free the space); its history stays (a county's "
             "account: its own contents)", status=204, errors=(403, 404, 409), county=True),
    Endpoint("GET", A + "/contents/{content_id}", admin.get_content, "admin", "One content",
             response=m.ContentOut, errors=(404,), county=True),
    Endpoint("PATCH", A + "/contents/{content_id}", admin.patch_content, "admin",
             "Change a content's title, kind or description (a county's account: its own "
             "contents); whole_province (the province's account) makes a county's content "
             "the province's", request=m.ContentPatch,
             response=m.ContentOut, errors=(400, 403, 404, 415, 422), county=True),
    Endpoint("GET", A + "/assignments", admin.list_assignments, "admin",
             "All assignments (a county's account: those reaching its county)",
             response=list[m.AssignmentOut], county=True),
    Endpoint("POST", A + "/assignments", admin.create_assignment, "admin",
             "Assign content to every terminal, a county, a township, a village or a terminal",
             request=m.AssignmentIn, response=m.Created, status=201, errors=(400, 415, 422),
             county=True),
    Endpoint("DELETE", A + "/assignments/{assignment_id}", admin.delete_assignment, "admin",
             "Withdraw an assignment", status=204, errors=(403, 404), county=True),
    Endpoint("GET", A + "/sessions", admin.list_sessions, "admin",
             "Scheduled sessions, all or from a county day on (?since=YYYY-MM-DD)",
             response=list[m.SessionOut], query=("since",), errors=(400,), county=True),
    Endpoint("GET", A + "/sessions/{session_id}", admin.get_session, "admin", "One session",
             response=m.SessionOut, errors=(404,), county=True),
    Endpoint("POST", A + "/sessions", admin.create_session, "admin",
             "Schedule a session: time, content list, villages", request=m.SessionIn,
             response=m.Created, status=201, errors=(400, 415, 422), county=True),
    Endpoint("PATCH", A + "/sessions/{session_id}", admin.patch_session, "admin",
             "Change an upcoming session (title, time, contents, villages)",
             request=m.SessionPatch, response=m.SessionOut, errors=(400, 404, 409, 415, 422),
             county=True),
    Endpoint("GET", A + "/sessions/{session_id}/roll-call", admin.session_roll_call, "admin",
             "Who attended a session, per terminal", response=list[m.RollCallEntry],
             errors=(404,), county=True),
    Endpoint("DELETE", A + "/sessions/{session_id}", admin.delete_session, "admin",
             "Cancel a scheduled session", status=204, errors=(404,), county=True),
    Endpoint("GET", A + "/units", admin.list_units, "admin", "Towns, townships, subdistricts",
             response=list[m.UnitOut], county=True),
    Endpoint("GET", A + "/villages", admin.list_villages, "admin",
             "Villages and communities", response=list[m.VillageOut], query=("unit",),
             county=True),
    Endpoint("POST", A + "/terminals", admin.create_terminal, "admin", "Register a terminal point",
             request=m.TerminalIn, response=m.Created, status=201, errors=(400, 409, 415, 422),
             county=True),
    Endpoint("GET", A + "/fleet", fleet.get_fleet, "admin",
             "Every terminal: online, last seen, disk, backlog, clock", response=m.FleetSummary,
             county=True),
    Endpoint("GET", A + "/readiness", fleet.get_readiness, "admin",
             "For each upcoming session, which terminals hold every item",
             response=list[m.SessionReadiness], county=True),
    Endpoint("POST", A + "/members/import", reports.import_members, "admin",
             "Import the member roster (CSV in UTF-8 or GBK, XLSX or XLS); ?dry_run=1 answers "
             "row by row and stores nothing", request=bytes,
             request_media="text/csv", response=m.ImportReport, query=("dry_run",),
             errors=(400, 413, 422), county=True),
    Endpoint("GET", A + "/reports/coverage", reports.coverage, "admin",
             "Coverage rate per village, township and county", response=m.CoverageReport,
             csv=True, query=("from", "to"), errors=(400, 422), county=True),
    Endpoint("GET", A + "/province", reports.province, "admin",
             "Per county: terminals online, coverage, readiness for the sessions ahead",
             response=m.ProvinceReport, csv=True, query=("from", "to"), errors=(400, 422)),
    Endpoint("GET", A + "/counties", reports.list_counties, "admin",
             "The counties held (the province's account reads one with ?county=)",
             response=list[m.County]),
    Endpoint("PUT", A + "/counties/{county_code}", reports.name_county, "admin",
             "Name a county", request=m.CountyName, response=m.CountyName, errors=(404, 422)),
    Endpoint("GET", A + "/members", reports.search_members, "admin",
             "Find members by number or name (?q=)", response=m.MemberSearch, query=("q",),
             errors=(400,), county=True),
    Endpoint("GET", A + "/reports/members/{member_no}", reports.member_record, "admin",
             "A member's learning record", response=m.LearningRecord, csv=True, errors=(404,),
             county=True),
    Endpoint("GET", A + "/reports/terminals", reports.terminal_months, "admin",
             "Sessions and hours per terminal and month against the county rule",
             response=m.TerminalMonthsReport, csv=True, query=("from", "to"), errors=(400, 422),
             county=True),
    Endpoint("GET", A + "/attendance/flagged", attendance.list_flagged, "admin",
             "Attendance records stored but not counted until a person confirms them: "
             "unplaceable times, or attendees not on the village roster",
             response=m.FlaggedRecords, county=True),
    Endpoint("POST", A + "/attendance/flagged/{terminal_id}/{record_id}/confirm",
             attendance.confirm_flagged, "admin",
             "Confirm a flagged record at the suggested time (started_at null) or a given one; "
             "it counts from then on", request=m.ConfirmIn, status=204,
             errors=(400, 404, 415, 422), county=True),
    Endpoint("POST", A + "/terminals/{terminal_id}/enrollment", enrollment.create_code, "admin",
             "A one-time enrollment code for this terminal point (replaces an unused one)",
             request=enrollment.CodeIn, request_optional=True, response=enrollment.CodeOut,
             status=201,
             errors=(404, 415, 422), county=True),
    Endpoint("GET", A + "/terminals/{terminal_id}/attendance", reports.terminal_records, "admin",
             "A terminal's latest attendance records, newest first (?limit=1..200)",
             response=list[m.TerminalRecord], query=("limit",), errors=(400, 404), county=True),
    Endpoint("POST", A + "/terminals/{terminal_id}/revoke", enrollment.revoke, "admin",
             "Revoke a terminal: its tokens stop working at once", status=204, errors=(404,),
             county=True),
    Endpoint("POST", A + "/bundles", bundles.write, "admin",
             "Write a USB bundle (signed catalogs and the items they lack) for a township, "
             "terminals or every offline one onto a stick mounted on the server; run again to "
             "finish a cut copy", request=bundles.BundleIn, response=bundle_reports.BundleReport,
             errors=(400, 415, 422), county=True),
    Endpoint("POST", A + "/bundles/returns", bundles.import_returns, "admin",
             "Take in the attendance and state terminals wrote on a stick; each record once, "
             "only what the terminal's enrolled key signed", request=bundles.ReturnsIn,
             response=bundle_reports.ReturnsReport, errors=(400, 415, 422), county=True),
    Endpoint("POST", "/api/v1/enroll", enrollment.enroll, "public",
             "Enroll a terminal with its one-time code: id, token, signing key",
             request=p.EnrollRequest, response=p.Enrollment, status=201,
             errors=(400, 401, 415, 422, 429, 507)),
    # terminals
    Endpoint("POST", T + "/token", enrollment.rotate_token, "terminal",
             "Rotate this terminal's token; the old one works for a day more",
             response=p.TokenRotation, status=201, errors=(401, 403, 507)),
    Endpoint("GET", T + "/catalog", terminal.get_catalog, "terminal",
             "The signed catalog: what this terminal must hold, and its upcoming sessions",
             response=p.SignedCatalog, errors=(304, 404)),
    Endpoint("POST", T + "/heartbeat", terminal.post_heartbeat, "terminal",
             "Report state: version, disk, cache, playback, backlog, clock",
             request=p.Heartbeat, response=p.HeartbeatAck, errors=(400, 404, 415, 422, 507)),
    Endpoint("GET", T + "/roster", terminal.get_roster, "terminal",
             "The members of this terminal's village", response=p.Roster, errors=(404,)),
    Endpoint("GET", T + "/peer-credential", peers.credential, "terminal",
             "A credential, signed by the county, that this terminal shows its peers",
             response=shared_peers.SignedCredential, errors=(404, 409)),
    Endpoint("GET", T + "/sources/{sha256}", peers.sources, "terminal",
             "Peers to try first for an item: same village, then township (then the server)",
             response=shared_peers.Sources, query=("lan",), errors=(404,)),
    Endpoint("POST", T + "/attendance", terminal.post_attendance, "terminal",
             "Deliver closed attendance records; idempotent per record id",
             request=p.AttendanceBatch, response=p.AttendanceAck,
             errors=(400, 404, 415, 422, 507)),
)


STATIC = Path(__file__).resolve().parent / "static"


async def console(request: web.Request) -> web.FileResponse:
    """The county console: one page over the API."""
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def add_routes(app: web.Application, openapi_handler: Handler) -> None:
    county_routes = set()
    for e in ENDPOINTS:
        route = app.router.add_route(e.method, e.path, e.handler)
        if e.county:
            county_routes.add(route)
    app[COUNTY_ROUTES] = frozenset(county_routes)
    app.router.add_get("/api/v1/openapi.json", openapi_handler)
    app.router.add_get("/", console)
    app.router.add_static("/static", STATIC, append_version=False)

"""Which credentials each request needs, and `authorize`, which checks them (called by
the auth middleware in `server.middlewares`).

    public        the console page, its static files, /api/v1/server, the OpenAPI
                  document, login, and tus OPTIONS (capability discovery)
    admin_read    GET/HEAD of admin endpoints and uploads: an admin or a viewer
    admin_write   anything else under /api/v1/admin and /api/v1/uploads: an admin;
                  with a console session also a matching X-CSRF-Token header and,
                  when the browser sends one, an Origin of this same host
    terminal      /api/v1/terminals/{id}/...: that terminal's own token, nothing else
    blob          /blobs/...: an enrolled terminal's token, or an admin

A county's account (admins.county_code set) may use only the endpoints that keep it
inside its county (`county=True` in server/routes.py); every other one answers it 403
`province_only`. The province's account reads any of those endpoints as one county's
account would with `?county=<code>` (404 `unknown_county` for a county not held); a
county's account is kept to its own county whatever it sends.
Admins authenticate with the session cookie set at login, or `Authorization: Bearer`
with an API token (scripts, tus clients). Terminals send `Authorization: Bearer` with
the token they received at enrollment. Credentials are looked up by their sha256.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from aiohttp import web

from server.appkeys import COUNTY_ROUTES, DB, TOKENS
from server.auth import secrets
from server.errors import BadRequest, Forbidden, NotFound, Unauthorized
from server.queries import auth as q
from server.queries import enrollment as eq
from shared.timeutil import utcnow

Access = Literal["public", "admin_read", "admin_write", "terminal", "blob"]
SESSION_COOKIE = "yj_session"
CSRF_HEADER = "X-CSRF-Token"
ADMIN_TOKEN_PREFIX = "yja_"
TERMINAL_TOKEN_PREFIX = "yjt_"
_READ = frozenset({"GET", "HEAD", "OPTIONS"})
_COUNTY_CODE = re.compile(r"[0-9]{6}")
_PUBLIC = frozenset({"/", "/api/v1/server", "/api/v1/openapi.json", "/api/v1/auth/login",
                     "/api/v1/enroll"})


@dataclass(frozen=True)
class Admin:
    admin_id: str
    username: str
    role: Literal["admin", "viewer"]
    csrf: str | None  # set for console sessions; None for API tokens
    session_hash: str | None = None
    county: str | None = None  # a county's account sees that county alone; None: the province


@dataclass(frozen=True)
class Terminal:
    terminal_id: str
    token_hash: str


_PRINCIPAL: web.RequestKey[Admin | Terminal] = web.RequestKey("principal")


def access_for(method: str, path: str) -> Access:
    if path in _PUBLIC or path.startswith("/static/"):
        return "public"
    if path == "/api/v1/uploads" and method == "OPTIONS":
        return "public"
    if path.startswith("/api/v1/terminals/"):
        return "terminal"
    if path.startswith("/blobs/"):
        return "blob"
    if path.startswith(("/api/v1/admin/", "/api/v1/uploads", "/api/v1/auth/")):
        return "admin_read" if method in _READ else "admin_write"
    return "public"  # unknown paths fall through to a 404


def terminal_of(request: web.Request) -> Terminal:
    who = request.get(_PRINCIPAL)
    if not isinstance(who, Terminal):
        raise Unauthorized("only an enrolled terminal may do this")
    return who


def admin_of(request: web.Request) -> Admin:
    who = request.get(_PRINCIPAL)
    if not isinstance(who, Admin):
        raise Unauthorized("log in first")
    return who


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return value.strip()


async def _authenticate_terminal(request: web.Request, token: str) -> Terminal:
    token_hash, now = secrets.digest(token), utcnow()
    cache = request.app[TOKENS]
    await cache.validate(request.app[DB])  # a revocation by another server process
    terminal_id = cache.get(token_hash)
    if terminal_id is None:
        found = await request.app[DB].read_together(lambda c: eq.token_terminal(c, token_hash, now))
        if found is not None:
            terminal_id, until = found
            cache.put(token_hash, terminal_id,
                      None if until is None else (until - now).total_seconds())
    if terminal_id is None:
        raise Unauthorized("this terminal's token is unknown or was revoked; enroll it again "
                           "with a code from the county", code="terminal_revoked")
    return Terminal(terminal_id=terminal_id, token_hash=token_hash)


async def _authenticate_admin(request: web.Request) -> Admin | None:
    db = request.app[DB]
    value = _bearer(request)
    if value is not None:
        if not value.startswith(ADMIN_TOKEN_PREFIX):
            raise Unauthorized("the Authorization header must be 'Bearer <API token>'")
        token_hash = secrets.digest(value)
        row = await db.read(lambda c: q.token(c, token_hash))
        if row is None:
            raise Unauthorized("the API token is unknown or was revoked")
        return Admin(admin_id=row.admin_id, username=row.username, role=row.role, csrf=None,
                     county=row.county)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    session_hash = secrets.digest(cookie)
    now = utcnow()
    row = await db.read(lambda c: q.session(c, session_hash, now))
    if row is None:
        return None
    return Admin(admin_id=row.admin_id, username=row.username, role=row.role,
                 csrf=row.csrf_token, session_hash=session_hash, county=row.county)


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.host


async def authorize(request: web.Request) -> None:
    """Check the credentials `request` needs and record who sent it (see `principal`).

    Raises Unauthorized (401, with WWW-Authenticate) without usable credentials,
    Forbidden (403: wrong_terminal, csrf, read_only) when they do not allow this request."""
    access = access_for(request.method, request.path)
    if access == "public":
        return
    if access in ("terminal", "blob"):
        token = _bearer(request)
        if token is not None and token.startswith(TERMINAL_TOKEN_PREFIX):
            terminal = await _authenticate_terminal(request, token)
            claimed = request.match_info.get("terminal_id")
            if access == "terminal" and claimed != terminal.terminal_id:
                raise Forbidden(f"terminal {terminal.terminal_id} may not act as {claimed}",
                                code="wrong_terminal")
            request[_PRINCIPAL] = terminal
            return
        if access == "terminal":
            raise Unauthorized("terminal endpoints need the terminal's enrollment token",
                               headers={"WWW-Authenticate": 'Bearer realm="yuanjiao"'})
    who = await _authenticate_admin(request)
    if who is None:
        raise Unauthorized("log in to the county console, or send an API token",
                           headers={"WWW-Authenticate": 'Bearer realm="yuanjiao"'})
    if access == "admin_write":
        if who.csrf is not None:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not secrets.same(sent, who.csrf) or not _same_origin(request):
                raise Forbidden("this request lacks the console's CSRF token; reload the page",
                                code="csrf")
        if who.role != "admin" and request.path != "/api/v1/auth/logout":
            raise Forbidden(f"{who.username} may only read (role viewer)", code="read_only")
    route = request.match_info.route
    # A county's account reads blobs (posters, previews) by sha256, learnt from the
    # contents it may use; it has no county to look at there.
    if (who.county is not None and access != "blob" and route.resource is not None
            and route not in request.app[COUNTY_ROUTES]):
        # Whitelisted, not blacklisted: an endpoint that does not yet keep a county's
        # account inside its county refuses it rather than show it the province.
        raise Forbidden(f"{who.username} is a county's account; this is the province's work",
                        code="province_only", details={"county": who.county})
    looked_at = request.query.get("county")
    if (looked_at is not None and access == "admin_read" and route.resource is not None
            and route in request.app[COUNTY_ROUTES]):
        if not _COUNTY_CODE.fullmatch(looked_at):
            raise BadRequest(f"county must be a county's six-digit code, not {looked_at[:20]!r}",
                             details={"problem": "县代码（county）应为 6 位数字"})
        if who.county is None and not await request.app[DB].read(
                lambda c: q.county_known(c, looked_at)):
            raise NotFound(f"no county {looked_at}: load its townships first",
                           code="unknown_county", details={"code": looked_at})
        if who.county is None:
            who = dataclasses.replace(who, county=looked_at)  # this read, as that county sees it
    request[_PRINCIPAL] = who

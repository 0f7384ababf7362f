"""Which credentials each request needs, and the middleware that checks them.

    public        the console page, its static files, /api/v1/server, the OpenAPI
                  document, login, and tus OPTIONS (capability discovery)
    admin_read    GET/HEAD of admin endpoints and uploads: an admin or a viewer
    admin_write   anything else under /api/v1/admin and /api/v1/uploads: an admin;
                  with a console session also a matching X-CSRF-Token header and,
                  when the browser sends one, an Origin of this same host
    terminal      /api/v1/terminals/{id}/...: reserved for terminal credentials
    blob          /blobs/...: reserved for terminal and admin credentials

Admins authenticate with the session cookie set at login, or `Authorization: Bearer`
with an API token (scripts, tus clients). Credentials are looked up by their sha256.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from aiohttp import web

from server.appkeys import DB
from server.auth import secrets
from server.errors import Forbidden, Handler, Unauthorized
from server.queries import auth as q
from shared.timeutil import utcnow

Access = Literal["public", "admin_read", "admin_write", "terminal", "blob"]
SESSION_COOKIE = "yj_session"
CSRF_HEADER = "X-CSRF-Token"
ADMIN_TOKEN_PREFIX = "yja_"
_PRINCIPAL = "principal"
_READ = frozenset({"GET", "HEAD", "OPTIONS"})
_PUBLIC = frozenset({"/", "/api/v1/server", "/api/v1/openapi.json", "/api/v1/auth/login"})


@dataclass(frozen=True)
class Admin:
    admin_id: str
    username: str
    role: Literal["admin", "viewer"]
    csrf: str | None  # set for console sessions; None for API tokens
    session_hash: str | None = None


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


def admin_of(request: web.Request) -> Admin:
    who = request.get(_PRINCIPAL)
    if not isinstance(who, Admin):
        raise Unauthorized("log in first")
    return who


async def _authenticate_admin(request: web.Request) -> Admin | None:
    db = request.app[DB]
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.startswith(ADMIN_TOKEN_PREFIX):
            raise Unauthorized("the Authorization header must be 'Bearer <API token>'")
        token_hash = secrets.digest(value.strip())
        row = await db.read(lambda c: q.token(c, token_hash))
        if row is None:
            raise Unauthorized("the API token is unknown or was revoked")
        return Admin(admin_id=row["id"], username=row["username"], role=row["role"], csrf=None)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    session_hash = secrets.digest(cookie)
    now = utcnow()
    row = await db.read(lambda c: q.session(c, session_hash, now))
    if row is None:
        return None
    return Admin(admin_id=row["id"], username=row["username"], role=row["role"],
                 csrf=row["csrf_token"], session_hash=session_hash)


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.host


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = access_for(request.method, request.path)
    if access in ("public", "terminal", "blob"):
        return await handler(request)
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
    request[_PRINCIPAL] = who
    return await handler(request)

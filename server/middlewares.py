"""Every middleware of the server, outermost first, as `create_app` wires them:

    tus      every answer under /api/v1/uploads carries Tus-Resumable, errors included
    literal  a path that is a route of its own (/api/v1/admin/contents/reach) answers only
             its own methods, 405 with its own Allow otherwise, rather than falling
             through to a parameterised route beside it (/contents/{content_id})
    errors   server exceptions and aiohttp's HTTP errors become the one error body
             (`server.errors.error_response`); an unreachable media bucket is 503
             store_unavailable, an unreachable database 503 database_unavailable, both
             with Retry-After; anything else is logged and answered 500
    nul      a path or query holding the NUL character (%00) is a 400: no database
             stores it in text, so it never reaches a query
    disk     terminal writes are refused with 507 + Retry-After while the data disk is at
             its reserve, and a write that still meets a full disk is answered 507
             (`server.diskspace`)
    auth     the credentials each path needs (`server.auth.policy.authorize`)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import sqlalchemy.exc
from aiohttp import web
from aiohttp.typedefs import Middleware

from server.api.tus import TUS_VERSION, UPLOADS_PATH
from server.appkeys import CONFIG
from server.auth.policy import authorize
from server.diskspace import DiskWatch
from server.errors import (
    HTTP_CODES,
    BadRequest,
    InsufficientStorage,
    ServerError,
    ServiceUnavailable,
    error_response,
    store_unavailable,
)
from server.media.store import StoreUnavailable
from shared.ratelog import RepeatingLog

log = logging.getLogger(__name__)
DATABASE_RETRY_AFTER = 10  # seconds: a restarting PostgreSQL is back within that, as a rule
unavailable = RepeatingLog(log)  # one line per outage, then a count

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def tus_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if request.path.startswith(UPLOADS_PATH):
        response.headers["Tus-Resumable"] = TUS_VERSION
        if response.status == 412:
            response.headers["Tus-Version"] = TUS_VERSION
    return response


@web.middleware
async def literal_path_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Also when routing found nothing: aiohttp's own 405 would list the methods of every
    # route the path matches.
    if not isinstance(request.match_info.route.resource, web.PlainResource):
        methods = sorted({route.method for other in request.app.router.resources()
                          if isinstance(other, web.PlainResource) and other.canonical == request.path
                          for route in other})
        if methods and request.method not in methods:
            raise web.HTTPMethodNotAllowed(request.method, methods)
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        try:
            return await handler(request)
        except StoreUnavailable as e:
            log.warning("%s %s: %s", request.method, request.path, e)
            raise store_unavailable(str(e), request.app[CONFIG].store_retry_seconds) from None
    except ServerError as e:
        if e.status >= 500 and not isinstance(e, InsufficientStorage | ServiceUnavailable):
            # the others are logged where they are raised (a full disk, a bucket down)
            log.error("%s %s: %s", request.method, request.path, e.message)
        return error_response(e.status, e.code, e.message, e.details, e.headers)
    except web.HTTPException as e:
        if e.status < 400 or e.empty_body:
            raise
        headers = {k: v for k, v in e.headers.items() if k.lower() in {"allow", "content-range"}}
        message = e.text if e.text and not e.text.startswith(f"{e.status}:") else e.reason
        return error_response(e.status, HTTP_CODES.get(e.status, "http_error"), message,
                              headers=headers)
    except ConnectionResetError:
        raise
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as e:
        # The database is down, restarting or unreachable (or SQLite stayed locked past
        # its busy timeout): the transaction was rolled back whole, so the request can
        # simply be sent again; terminals do so on their own.
        unavailable.event(type(e.orig).__name__, "database unavailable on %s %s: %s",
                          request.method, request.path, e.orig)
        return error_response(503, "database_unavailable",
                              "the database is not answering; nothing was lost, try again shortly",
                              {"retry_after": DATABASE_RETRY_AFTER},
                              {"Retry-After": str(DATABASE_RETRY_AFTER)})
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal server error; the county admin can "
                              "find the details in the server log")


@web.middleware
async def nul_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.query.items()):
        raise BadRequest("the address or its query holds a NUL character (%00)",
                         details={"problem": "地址或查询参数中含有空字符（%00）"})
    return await handler(request)


def disk_middleware(disk: DiskWatch) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        await disk.check_terminal_write(request)
        try:
            return await handler(request)
        except Exception as e:
            refusal = disk.full_disk_refusal(request, e)
            if refusal is None:
                raise
            raise refusal from None

    return middleware


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    await authorize(request)
    return await handler(request)


def middlewares(disk: DiskWatch) -> list[Middleware]:
    """The server's middlewares in the order they wrap a request (outermost first)."""
    return [tus_middleware, error_middleware, nul_middleware, literal_path_middleware,
            disk_middleware(disk), auth_middleware]

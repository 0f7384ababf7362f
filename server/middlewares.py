"""Every middleware of the server, outermost first, as `create_app` wires them:

    tus      every answer under /api/v1/uploads carries Tus-Resumable, errors included
    literal  a path that is a route of its own (/api/v1/admin/contents/reach) answers only
             its own methods, 405 with its own Allow otherwise, rather than falling
             through to a parameterised route beside it (/contents/{content_id})
    errors   server exceptions and aiohttp's HTTP errors become the one error body
             (`server.errors.error_response`); an unreachable media bucket is 503
             store_unavailable with Retry-After; anything else is logged and answered 500
    disk     terminal writes are refused with 507 + Retry-After while the data disk is at
             its reserve, and a write that still meets a full disk is answered 507
             (`server.diskspace`)
    auth     the credentials each path needs (`server.auth.policy.authorize`)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from server.api.tus import TUS_VERSION, UPLOADS_PATH
from server.appkeys import CONFIG
from server.auth.policy import authorize
from server.diskspace import DiskWatch
from server.errors import (
    HTTP_CODES,
    InsufficientStorage,
    ServerError,
    ServiceUnavailable,
    error_response,
    store_unavailable,
)
from server.media.store import StoreUnavailable

log = logging.getLogger(__name__)

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
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal server error; the county admin can "
                              "find the details in the server log")


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
    return [tus_middleware, error_middleware, literal_path_middleware, disk_middleware(disk),
            auth_middleware]

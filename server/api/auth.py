"""Console login and logout, the current session, and admin API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

import msgspec
from aiohttp import web
from msgspec import Meta, Struct
from sqlalchemy import Connection

from server.api.jsonio import json_response, read_json
from server.appkeys import CONFIG, DB, THROTTLE
from server.auth import secrets
from server.auth.policy import ADMIN_TOKEN_PREFIX, SESSION_COOKIE, admin_of
from server.errors import NotFound, TooManyRequests, Unauthorized
from server.queries import auth as q
from server.queries import county as county_q
from server.queries import throttle as tq
from shared.timeutil import utcnow

DEVICE_COOKIE = "yj_device"
LOGIN_PATH = "/api/v1/auth/login"


class LoginIn(Struct, frozen=True, forbid_unknown_fields=True):
    username: Annotated[str, Meta(min_length=1, max_length=64)]
    password: Annotated[str, Meta(min_length=1, max_length=1024)]


class SessionOut(Struct, frozen=True, kw_only=True):
    username: str
    role: Literal["admin", "viewer"]
    csrf_token: str | None
    county: str | None = None  # a county's account: its county's code; None: the province's
    county_name: str = ""  # that county's name ("" when unnamed or the province's)
    counties: int = 1  # how many counties the server holds (a province: more than one)


class TokenIn(Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]


class TokenCreated(Struct, frozen=True, kw_only=True):
    id: str
    name: str
    token: str  # shown this once; only its hash is kept


class TokenOut(Struct, frozen=True, kw_only=True):
    id: str
    name: str
    username: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


def _client_address(request: web.Request) -> str:
    if request.app[CONFIG].trust_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.remote or "unknown"


def _is_https(request: web.Request) -> bool:
    if request.secure:
        return True
    return request.app[CONFIG].trust_proxy and request.headers.get("X-Forwarded-Proto") == "https"


async def _known_device(request: web.Request, username: str) -> bool:
    """Whether this browser logged in to `username` before (its device cookie)."""
    cookie = request.cookies.get(DEVICE_COOKIE)
    if not cookie or len(cookie) > 200:
        return False
    digest, now = secrets.digest(cookie), utcnow()
    owner = await request.app[DB].read(lambda c: tq.device_username(c, digest, now))
    return owner is not None and owner.lower() == username.lower()


async def login(request: web.Request) -> web.Response:
    body = await read_json(request, LoginIn)
    throttle, address = request.app[THROTTLE], _client_address(request)
    config = request.app[CONFIG]
    known = await _known_device(request, body.username)
    refusal = await throttle.refusal(body.username, address, known_device=known)
    if refusal is not None:
        headers = {"Retry-After": str(refusal.seconds)}
        if refusal.account_locked:
            raise TooManyRequests(
                f"The account is locked after many wrong passwords from several places; try again "
                f"in {refusal.seconds} s, or log in from a browser that has logged in here before.",
                code="account_locked", headers=headers, details={"retry_after": refusal.seconds},
            )
        raise TooManyRequests(
            f"too many wrong passwords; try again in {refusal.seconds} s", headers=headers,
            details={"retry_after": refusal.seconds},
        )
    db = request.app[DB]
    row = await db.read(lambda c: q.admin_by_name(c, body.username))
    if not await secrets.verify_password(row.password_hash if row else None, body.password):
        await throttle.failed(body.username, address)
        raise Unauthorized("wrong user name or password", code="bad_login")
    assert row is not None
    await throttle.succeeded(body.username, address)
    session_id, csrf, device = secrets.new_token(""), secrets.new_token(""), secrets.new_token("")
    now = utcnow()
    expires = now + timedelta(hours=config.session_hours)
    device_until = now + timedelta(days=config.known_device_days)
    session_hash, device_hash = secrets.digest(session_id), secrets.digest(device)

    def record(c: Connection) -> None:
        q.create_session(c, session_hash, row.id, csrf, now, expires)
        tq.add_device(c, device_hash, row.id, now, device_until)

    await db.write(record)
    counties, county_name = await db.read(lambda c: county_q.summary(c, row.county))
    response = json_response(SessionOut(username=row.username, role=row.role, csrf_token=csrf,
                                        county=row.county, county_name=county_name,
                                        counties=counties))
    secure = _is_https(request)
    response.set_cookie(
        SESSION_COOKIE, session_id, httponly=True, samesite="Strict", secure=secure,
        path="/", max_age=int(config.session_hours * 3600),
    )
    # Sent back only to the login endpoint: it marks this browser as known to the account.
    response.set_cookie(
        DEVICE_COOKIE, device, httponly=True, samesite="Strict", secure=secure,
        path=LOGIN_PATH, max_age=int(config.known_device_days * 86400),
    )
    return response


async def logout(request: web.Request) -> web.Response:
    who = admin_of(request)
    if who.session_hash is not None:
        session_hash = who.session_hash
        await request.app[DB].write(lambda c: q.delete_session(c, session_hash))
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def current(request: web.Request) -> web.Response:
    who = admin_of(request)
    counties, county_name = await request.app[DB].read(lambda c: county_q.summary(c, who.county))
    return json_response(SessionOut(username=who.username, role=who.role, csrf_token=who.csrf,
                                    county=who.county, county_name=county_name, counties=counties))


async def list_tokens(request: web.Request) -> web.Response:
    county = admin_of(request).county
    rows = await request.app[DB].read(lambda c: q.list_tokens(c, county))
    return json_response(msgspec.convert(rows, list[TokenOut], from_attributes=True))


async def create_token(request: web.Request) -> web.Response:
    who = admin_of(request)
    body = await read_json(request, TokenIn)
    token = secrets.new_token(ADMIN_TOKEN_PREFIX)
    token_hash, now = secrets.digest(token), utcnow()
    token_id = await request.app[DB].write(
        lambda c: q.create_token(c, who.admin_id, body.name, token_hash, now))
    return json_response(TokenCreated(id=token_id, name=body.name, token=token), status=201)


async def revoke_token(request: web.Request) -> web.Response:
    token_id, now, county = request.match_info["token_id"], utcnow(), admin_of(request).county
    if not await request.app[DB].write(lambda c: q.revoke_token(c, token_id, now, county)):
        raise NotFound(f"no active token {token_id}", details={"what": "有效的 API 令牌", "id": token_id})
    return web.Response(status=204)

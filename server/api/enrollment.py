"""Enrollment: an admin makes a one-time code for a terminal point; the site manager
types it into the box; the box gets its id, a 256-bit token (the server keeps only its
hash) and the signing key to pin. Tokens rotate without downtime; revoking a terminal
refuses it from then on. A county's account makes codes for and revokes its county's
terminals alone: another county's is not found."""

from __future__ import annotations

import binascii
import re
import secrets as pysecrets
from datetime import timedelta
from typing import Annotated

from aiohttp import web
from msgspec import Meta, Struct
from sqlalchemy import Connection

from server.api.jsonio import json_response, read_json
from server.api.scope import county_of
from server.appkeys import CONFIG, DB, SERVER_ID, SIGNER, THROTTLE, TLS_PIN, TOKENS
from server.auth import secrets
from server.auth.policy import TERMINAL_TOKEN_PREFIX, terminal_of
from server.errors import NotFound, TooManyRequests, Unauthorized, Unprocessable
from server.queries import county
from server.queries import enrollment as q
from shared.protocol import Enrollment, EnrollRequest, TokenRotation
from shared.signing import load_public_key
from shared.timeutil import utcnow
from shared.typed import normalize_code

CODE_DIGITS = 16  # typed with a TV remote: digits only, about 53 bits
ROTATION_GRACE = timedelta(days=1)


class CodeIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    expires_in_hours: Annotated[float, Meta(gt=0, le=24 * 30)] = 72.0


class CodeOut(Struct, frozen=True, kw_only=True):
    terminal_id: str
    code: str
    expires_at: str


def _normalise(code: str) -> str:
    """The code's ASCII digits, after NFKC: `１２３４-５６７８` typed with an input method is
    `12345678`; separators and spaces are dropped."""
    return re.sub(r"[^0-9]", "", normalize_code(code))


def new_code() -> str:
    digits = "".join(str(pysecrets.randbelow(10)) for _ in range(CODE_DIGITS))
    return "-".join(digits[i:i + 4] for i in range(0, CODE_DIGITS, 4))


async def create_code(request: web.Request) -> web.Response:
    terminal_id = request.match_info["terminal_id"]
    body = await read_json(request, CodeIn) if request.body_exists else CodeIn()
    db, mine = request.app[DB], county_of(request)
    if await db.read(lambda c: county.terminal(c, terminal_id, mine)) is None:
        raise NotFound(f"no terminal {terminal_id}", details={"what": "终端站点", "id": terminal_id})
    code, now = new_code(), utcnow()
    expires = now + timedelta(hours=body.expires_in_hours)
    code_hash = secrets.digest(_normalise(code))
    await db.write(lambda c: q.new_code(c, terminal_id, code_hash, now, expires))
    return json_response(CodeOut(terminal_id=terminal_id, code=code, expires_at=expires.isoformat()),
                         status=201)


async def enroll(request: web.Request) -> web.Response:
    body = await read_json(request, EnrollRequest)
    if body.public_key is not None:
        try:
            load_public_key(body.public_key)
        except (ValueError, binascii.Error):
            raise Unprocessable("public_key is not a base64 raw Ed25519 public key",
                                code="bad_public_key") from None
    throttle = request.app[THROTTLE]
    address = request.remote or "unknown"
    refusal = await throttle.refusal("enroll", address, per_account=False)
    if refusal is not None:
        raise TooManyRequests(f"too many wrong codes; try again in {refusal.seconds} s",
                              details={"retry_after": refusal.seconds},
                              headers={"Retry-After": str(refusal.seconds)})
    token = secrets.new_token(TERMINAL_TOKEN_PREFIX)
    code_hash, token_hash, now = secrets.digest(_normalise(body.code)), secrets.digest(token), utcnow()
    db = request.app[DB]
    terminal_id = await db.write(lambda c: q.redeem(c, code_hash, token_hash, now, body.public_key))
    if terminal_id is not None:
        request.app[TOKENS].forget_terminal(terminal_id)  # the old box's tokens are retired
    if terminal_id is None:
        await throttle.failed("enroll", address, per_account=False)
        raise Unauthorized("the code is wrong, used or expired; ask the county for a new one",
                           code="bad_enrollment_code")
    await throttle.succeeded("enroll", address)
    t = await db.read(lambda c: county.terminal(c, terminal_id))
    assert t is not None
    signer = request.app[SIGNER]
    return json_response(Enrollment(
        terminal_id=terminal_id, village_code=t.village_code, village_name=t.village_name,
        token=token, server_id=request.app[SERVER_ID], server_name=request.app[CONFIG].server_name,
        public_key=signer.public_key_b64, key_fingerprint=signer.fingerprint,
        tls_certificate_sha256=request.app[TLS_PIN] or None,
    ), status=201)


async def rotate_token(request: web.Request) -> web.Response:
    who = terminal_of(request)
    token = secrets.new_token(TERMINAL_TOKEN_PREFIX)
    new_hash, now = secrets.digest(token), utcnow()
    until = now + ROTATION_GRACE
    await request.app[DB].write(
        lambda c: q.rotate(c, who.terminal_id, who.token_hash, new_hash, now, until))
    request.app[TOKENS].forget_terminal(who.terminal_id)  # the old token's grace ends on time
    return json_response(TokenRotation(token=token, previous_valid_until=until), status=201)


async def revoke(request: web.Request) -> web.Response:
    terminal_id, now, mine = request.match_info["terminal_id"], utcnow(), county_of(request)

    def revoke_it(c: Connection) -> bool:
        if mine is not None and county.terminal(c, terminal_id, mine) is None:
            return False
        return q.revoke_terminal(c, terminal_id, now)

    if not await request.app[DB].write(revoke_it):
        raise NotFound(f"no terminal {terminal_id}", details={"what": "终端站点", "id": terminal_id})
    request.app[TOKENS].forget_terminal(terminal_id)
    return web.Response(status=204)

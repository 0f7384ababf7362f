"""Enrollment: the county's one-time code traded for this box's identity.

The site manager types the code the county admin made for this terminal point. The
server answers with the terminal id, a secret token (shown once) and the signing key
to pin. From then on the token goes with every terminal request, and the pinned key is
the enrollment's, not a first-contact guess.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import timedelta

import aiohttp
import msgspec

from shared.protocol import Enrollment, EnrollRequest
from shared.signing import fingerprint, load_public_key
from shared.sqlite import Database
from shared.timeutil import from_db, to_db, utcnow
from terminal import constants as k
from terminal.errors import ServerUnreachable, UntrustedServer
from terminal.network.client import TRANSPORT_ERRORS, ServerClient, refused
from terminal.network.link import LAST_GOOD
from terminal.network.trust import PINNED_FINGERPRINT, PINNED_KEY
from terminal.storage import db as q
from terminal.storage.usb import new_key, store_key

log = logging.getLogger(__name__)

TOKEN = "terminal_token"
TERMINAL_ID = "terminal_id"
TLS_PIN = "tls_certificate_sha256"
TOKEN_ISSUED = "terminal_token_issued_at"


def tls_fingerprint(pin_hex: str | None) -> aiohttp.Fingerprint | None:
    """aiohttp's certificate pin for an https server, from its sha256 in hex."""
    if not pin_hex:
        return None
    return aiohttp.Fingerprint(bytes.fromhex(pin_hex.replace(":", "")))


async def stored_tls_pin(database: Database) -> str | None:
    return await database.read(lambda c: q.get_kv(c, TLS_PIN))


async def enroll(http: aiohttp.ClientSession, database: Database, server_url: str, code: str,
                 tls_pin: str | None = None) -> Enrollment:
    """Trade the code for this box's identity. Over https with a certificate no public CA
    vouches for, `tls_pin` (printed beside the code by the county) is checked instead."""
    url = server_url.rstrip("/") + "/api/v1/enroll"
    own_pem, own_public = new_key()  # signs what this box writes on USB sticks
    body = msgspec.json.encode(EnrollRequest(code=code, software_version=k.SOFTWARE_VERSION,
                                             public_key=own_public))
    pin = tls_fingerprint(tls_pin)
    try:
        async with http.post(url, data=body, headers={"Content-Type": "application/json"},
                             ssl=pin if pin is not None else True) as resp:
            if resp.status >= 400:
                raise await refused(resp)
            answer = msgspec.json.decode(await resp.read(), type=Enrollment)
    except TRANSPORT_ERRORS as e:
        raise ServerUnreachable(f"POST {url}: {e!r}") from e
    key = load_public_key(answer.public_key)
    if fingerprint(key) != answer.key_fingerprint:
        raise UntrustedServer("the enrollment's key does not match its fingerprint")

    def store(c: sqlite3.Connection) -> str | None:
        before = q.get_kv(c, PINNED_FINGERPRINT)
        q.set_kv(c, PINNED_KEY, answer.public_key)
        q.set_kv(c, PINNED_FINGERPRINT, answer.key_fingerprint)
        q.set_kv(c, TOKEN, answer.token)
        q.set_kv(c, TOKEN_ISSUED, to_db(utcnow()))
        q.set_kv(c, TERMINAL_ID, answer.terminal_id)
        q.set_kv(c, LAST_GOOD, server_url.rstrip("/"))
        store_key(c, own_pem)
        certificate = answer.tls_certificate_sha256 or tls_pin
        if certificate:
            q.set_kv(c, TLS_PIN, certificate)
        return before

    before = await database.write(store)
    if before and before != answer.key_fingerprint:
        log.warning("enrollment replaced the pinned key %s with %s", before, answer.key_fingerprint)
    log.info("enrolled as %s (%s) with server %s", answer.terminal_id, answer.village_name, answer.server_id)
    return answer


async def stored_identity(database: Database) -> tuple[str | None, str | None]:
    """(terminal id, token) saved by enrollment, if any."""
    return await database.read(lambda c: (q.get_kv(c, TERMINAL_ID), q.get_kv(c, TOKEN)))


async def rotate_if_due(database: Database, client: ServerClient, every: timedelta) -> str | None:
    """Ask the server for a new token when the one held is older than `every`; the old one
    keeps working for a day, so nothing stops if this box loses power half-way. Returns
    the new token, or None when it was not due."""
    issued = await database.read(lambda c: q.get_kv(c, TOKEN_ISSUED))
    now = utcnow()
    if issued is None:  # enrolled before tokens were dated: start the clock now
        await database.write(lambda c: q.set_kv(c, TOKEN_ISSUED, to_db(now)))
        return None
    if now - from_db(issued) < every:
        return None
    rotation = await client.rotate_token()

    def store(c: sqlite3.Connection) -> None:
        q.set_kv(c, TOKEN, rotation.token)
        q.set_kv(c, TOKEN_ISSUED, to_db(now))

    await database.write(store)
    log.info("token rotated; the old one works until %s", rotation.previous_valid_until)
    return rotation.token

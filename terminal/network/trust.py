"""Whom the terminal believes: the server signing key pinned at enrollment.

The key comes only from enrolling with the county's one-time code. Before that no
server is trusted; afterwards any server whose fingerprint differs is refused, whatever
mDNS says about it.
"""

from __future__ import annotations

import logging
import secrets

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.signing import fingerprint, load_public_key, proof_message, verify
from shared.sqlite import Database
from terminal.errors import UntrustedServer
from terminal.network.client import ServerClient, ServerInfo
from terminal.storage import db as q

log = logging.getLogger(__name__)

PINNED_KEY = "pinned_public_key"
PINNED_FINGERPRINT = "pinned_fingerprint"


class Trust:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._key: Ed25519PublicKey | None = None
        self.fingerprint: str | None = None

    async def async_load(self) -> None:
        key_b64 = await self._db.read(lambda c: q.get_kv(c, PINNED_KEY))
        if key_b64:
            self._key = load_public_key(key_b64)
            self.fingerprint = fingerprint(self._key)

    @property
    def key(self) -> Ed25519PublicKey | None:
        return self._key

    async def async_check(self, client: ServerClient) -> ServerInfo:
        """Ask the server who it is; refuse it unless it proves it holds the enrolled key.

        Anyone can copy the public key and its fingerprint into an mDNS record and an
        answer; only the county server can sign a fresh random challenge with it. No token,
        heartbeat or attendance goes to a server before this check passes."""
        challenge = secrets.token_hex(16)
        info = await client.server_info(challenge)
        try:
            key = load_public_key(info.public_key)
        except ValueError as e:
            raise UntrustedServer(f"{client.base_url} sent an unusable public key: {e}") from e
        fp = fingerprint(key)
        if fp != info.key_fingerprint:
            raise UntrustedServer(f"{client.base_url}: the key does not match its own fingerprint")
        if self.fingerprint is None:
            raise UntrustedServer(
                "this terminal is not enrolled, so it trusts no server yet: enter the county's "
                "code with `yuanjiao-terminal enroll CODE`"
            )
        if fp != self.fingerprint:
            raise UntrustedServer(
                f"{client.base_url} signs with key {fp}, not the pinned {self.fingerprint}; refused"
            )
        assert self._key is not None
        if not info.challenge_signature or not verify(
            self._key, proof_message(challenge), info.challenge_signature
        ):
            raise UntrustedServer(
                f"{client.base_url} shows the pinned key but cannot sign with it; refused"
            )
        return info

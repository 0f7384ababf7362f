"""Terminals serving each other: the credential the county signs, and request proofs.

A terminal serves the verified items it holds to another county terminal only when the
request carries

* `Yuanjiao-Peer-Credential`: a `SignedCredential` (base64 of its JSON), in which the
  county server's key (pinned by every terminal at enrollment) vouches that this
  terminal id holds this public key, until `expires_at`;
* `Yuanjiao-Peer-Time` and `Yuanjiao-Peer-Proof`: the caller's signature, with that
  public key, over the method, the path and the time, so a credential overheard on the
  LAN is no use without the terminal's private key.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Annotated, Final

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from msgspec import Meta, Struct

from shared.protocol import UtcTime
from shared.signing import load_public_key, verify

CREDENTIAL_CONTEXT: Final = b"yuanjiao-peer-credential\x00"
REQUEST_CONTEXT: Final = b"yuanjiao-peer-request\x00"
CREDENTIAL_HEADER: Final = "Yuanjiao-Peer-Credential"
TIME_HEADER: Final = "Yuanjiao-Peer-Time"
PROOF_HEADER: Final = "Yuanjiao-Peer-Proof"
# A terminal's clock can be wrong after a power cut; a day's slack still stops old replays.
PROOF_WINDOW: Final = timedelta(days=1)


class PeerCredential(Struct, frozen=True, kw_only=True):
    terminal_id: str
    unit_code: str
    public_key: str  # base64 raw Ed25519: the terminal's own key from enrollment
    expires_at: UtcTime


class SignedCredential(Struct, frozen=True, kw_only=True):
    credential: msgspec.Raw
    signature: str  # by the county server's signing key, over CREDENTIAL_CONTEXT + bytes


class PeerSource(Struct, frozen=True, kw_only=True):
    """A terminal that holds an item verified, as the server last heard: try in order."""

    terminal_id: str
    url: Annotated[str, Meta(max_length=200)]  # http://address:port of its peer endpoint
    same_village: bool = False
    same_township: bool = False
    same_lan: bool = False  # the asker hears it over mDNS


class Sources(Struct, frozen=True, kw_only=True):
    """Where to fetch an item from. `wait_seconds` > 0: a terminal on the same LAN is
    fetching it from the server right now; ask again then rather than fetch it twice."""

    peers: list[PeerSource]
    wait_seconds: float = 0.0


class BadCredential(Exception):
    """The caller is not shown to be one of the county's terminals."""


def encode_header(signed: SignedCredential) -> str:
    return base64.b64encode(msgspec.json.encode(signed)).decode("ascii")


def request_message(method: str, path: str, when: str) -> bytes:
    return REQUEST_CONTEXT + f"{method.upper()} {path} {when}".encode()


def proof_headers(signed: SignedCredential, key: Ed25519PrivateKey, method: str, path: str,
                  now: datetime) -> dict[str, str]:
    when = now.isoformat()
    proof = base64.b64encode(key.sign(request_message(method, path, when))).decode("ascii")
    return {CREDENTIAL_HEADER: encode_header(signed), TIME_HEADER: when, PROOF_HEADER: proof}


def check_request(headers: dict[str, str], method: str, path: str, server_key: Ed25519PublicKey,
                  now: datetime) -> PeerCredential:
    """The caller's credential if the headers prove it; BadCredential otherwise."""
    try:
        signed = msgspec.json.decode(base64.b64decode(headers[CREDENTIAL_HEADER]),
                                     type=SignedCredential)
        raw = bytes(signed.credential)
        if not verify(server_key, CREDENTIAL_CONTEXT + raw, signed.signature):
            raise BadCredential("the credential is not signed by the county server")
        credential = msgspec.json.decode(raw, type=PeerCredential)
        when_text = headers[TIME_HEADER]
        when = datetime.fromisoformat(when_text)
        key = load_public_key(credential.public_key)
    except BadCredential:
        raise
    except (KeyError, ValueError, msgspec.DecodeError, msgspec.ValidationError) as e:
        raise BadCredential(f"no usable peer credential: {e}") from None
    if when.tzinfo is None or abs(now - when) > PROOF_WINDOW:
        raise BadCredential("the request's time is too far from this terminal's clock")
    if credential.expires_at <= now:
        raise BadCredential("the credential has expired")
    if not verify(key, request_message(method, path, when_text), headers.get(PROOF_HEADER, "")):
        raise BadCredential("the request is not signed by the credential's terminal")
    return credential

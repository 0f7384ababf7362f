"""Ed25519 signatures over catalog bytes.

The server signs the exact JSON bytes of a catalog; the terminal verifies those same
bytes before decoding them, so no re-encoding can change what was signed.
"""

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """First 32 hex digits of the sha256 of the raw public key: short enough for TXT."""
    return hashlib.sha256(public_key_bytes(key)).hexdigest()[:32]


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data)).decode("ascii")


def load_public_key(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))


def verify(key: Ed25519PublicKey, data: bytes, signature_b64: str) -> bool:
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


PROOF_CONTEXT = b"yuanjiao-server-proof\x00"


def proof_message(challenge: str) -> bytes:
    """What a server signs to prove it holds its key: a fixed context, then the challenge.

    The context keeps a proof from ever being a valid catalog signature, and the other
    way round."""
    return PROOF_CONTEXT + challenge.encode("ascii")

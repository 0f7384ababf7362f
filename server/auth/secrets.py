"""Random secrets and their stored hashes."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
MIN_PASSWORD = 10


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this when the user does not exist keeps the timing the same.
    Made on first need, not at import: an argon2 hash takes 64 MiB for a moment."""
    return _hasher.hash("not a real password")


def new_token(prefix: str) -> str:
    """256 bits from the OS, URL-safe, with a prefix that says what it is."""
    return prefix + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """Tokens carry 256 bits of entropy, so a plain sha256 is a safe stored form."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)

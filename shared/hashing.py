"""Content hashes: every file is named and checked by its sha256."""

import hashlib
import re
from pathlib import Path
from typing import Final

CHUNK: Final = 1 << 20
_SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(value: str) -> bool:
    """True for a lower-case hex sha256 digest, the only form used on the wire."""
    return bool(_SHA256_RE.match(value))


def sha256_file(path: Path, chunk: int = CHUNK) -> str:
    """Hash a file in bounded chunks (blocking: call it from a thread)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def update_from_file(h: "hashlib._Hash", path: Path, length: int, chunk: int = CHUNK) -> None:
    """Feed the first `length` bytes of a file into `h` (blocking)."""
    remaining = length
    with open(path, "rb") as f:
        while remaining > 0:
            block = f.read(min(chunk, remaining))
            if not block:
                raise ValueError(f"{path} is shorter than {length} bytes")
            h.update(block)
            remaining -= len(block)

"""USB bundles: the one fixed layout on the stick, and the signed returns terminals write.

A bundle carries content out to villages with no link, and attendance back::

    <stick>/yuanjiao/
        README.txt                        what this is, in Chinese, for whoever finds it
        bundle.json                       BundleManifest: a table of contents, trusted for
                                          nothing (everything it names is checked again)
        catalogs/<terminal id>.json       that terminal's SignedCatalog, byte for byte as
                                          the catalog endpoint serves it
        items/<sha256>/<NNNN>.bin         the item's bytes cut into parts of `part_size`
                                          bytes (a multiple of its piece size, under 4 GiB
                                          for FAT32); part NNNN starts at NNNN x part_size
        returns/<terminal id>/<stamp>-<kind>.json
                                          SignedReturn envelopes a terminal wrote: its
                                          undelivered attendance and its state

Every file is written under a `.tmp` name, fsynced and renamed, so a name without
`.tmp` is always whole; a writer that was cut starts again from what is whole. Nothing on
a stick is trusted but what a pinned key vouches for: catalogs by the county server's
key (pinned at enrollment), item bytes by the piece and file hashes in such a catalog,
returns by the key the terminal sent when it enrolled.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from msgspec import Meta, Struct

from shared.files import fsync_dir
from shared.protocol import AttendanceBatch, Heartbeat, UtcTime
from shared.signing import fingerprint, verify

ROOT: Final = "yuanjiao"
FORMAT: Final = 1
FAT32_PART: Final = 2 << 30  # 2 GiB parts: well under FAT32's 4 GiB file limit
MAX_RETURN_BYTES: Final = 64 << 20  # a return file larger than this is not read at all
RETURN_CONTEXT: Final = b"yuanjiao-terminal-return\x00"  # never a catalog or a proof


class ManifestItem(Struct, frozen=True, kw_only=True):
    sha256: str
    size: int
    part_size: int
    parts: int


class BundleManifest(Struct, frozen=True, kw_only=True):
    format: int
    written_at: UtcTime
    server_id: str
    key_fingerprint: str
    terminals: list[str]
    items: list[ManifestItem]


class ReturnRecord(Struct, frozen=True, kw_only=True):
    """What a terminal puts on a stick for the county: attendance or its state."""

    kind: Literal["attendance", "state"]
    terminal_id: Annotated[str, Meta(min_length=1, max_length=64)]
    written_at: UtcTime
    attendance: AttendanceBatch | None = None
    state: Heartbeat | None = None


class SignedReturn(Struct, frozen=True, kw_only=True):
    """A ReturnRecord's exact JSON bytes and the terminal's signature over them."""

    record: msgspec.Raw
    signature: str
    key_fingerprint: str


def root(stick: Path) -> Path:
    return stick / ROOT


def catalog_path(stick: Path, terminal_id: str) -> Path:
    return root(stick) / "catalogs" / f"{terminal_id}.json"


def item_dir(stick: Path, sha256: str) -> Path:
    return root(stick) / "items" / sha256


def part_path(stick: Path, sha256: str, index: int) -> Path:
    return item_dir(stick, sha256) / f"{index:04d}.bin"


def returns_dir(stick: Path, terminal_id: str) -> Path:
    return root(stick) / "returns" / terminal_id


def part_size_for(piece_size: int, limit: int = FAT32_PART) -> int:
    """The largest multiple of `piece_size` not above `limit` (at least one piece)."""
    return max(piece_size, limit // piece_size * piece_size)


def sign_return(key: Ed25519PrivateKey, record: ReturnRecord) -> bytes:
    """The SignedReturn file's bytes for `record`."""
    raw = msgspec.json.encode(record)
    envelope = SignedReturn(
        record=msgspec.Raw(raw),
        signature=base64.b64encode(key.sign(RETURN_CONTEXT + raw)).decode("ascii"),
        key_fingerprint=fingerprint(key.public_key()),
    )
    return msgspec.json.encode(envelope)


class BadReturn(Exception):
    """A return file that no enrolled terminal's key vouches for, or that does not decode."""


def open_return(data: bytes, key: Ed25519PublicKey | None) -> ReturnRecord:
    """The record inside a SignedReturn file, if `key` signed exactly these bytes."""
    try:
        envelope = msgspec.json.decode(data, type=SignedReturn)
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise BadReturn(f"not a signed return: {e}") from e
    if key is None:
        raise BadReturn("the terminal sent no key at enrollment; its returns cannot be checked")
    raw = bytes(envelope.record)
    if not verify(key, RETURN_CONTEXT + raw, envelope.signature):
        raise BadReturn("the signature does not verify with the terminal's enrolled key")
    try:
        return msgspec.json.decode(raw, type=ReturnRecord)
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise BadReturn(f"the signed record does not decode: {e}") from e


def write_atomic(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all: `.tmp`, fsync, rename, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def stamp(when: datetime) -> str:
    """A file-name-safe UTC time (FAT allows no colons)."""
    return when.strftime("%Y%m%dT%H%M%S%fZ")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

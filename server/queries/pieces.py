"""Piece hashes per content file: `hashes` holds the raw 32-byte digests, concatenated."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence


def store(conn: sqlite3.Connection, sha256: str, piece_size: int, hashes: Sequence[str]) -> None:
    """Record a file's piece hashes; the first recorded stay (they describe the same bytes)."""
    conn.execute(
        "INSERT INTO content_pieces (sha256, piece_size, hashes) VALUES (?, ?, ?) "
        "ON CONFLICT (sha256) DO NOTHING",
        (sha256, piece_size, b"".join(bytes.fromhex(h) for h in hashes)),
    )


def get(conn: sqlite3.Connection, sha256: str) -> tuple[int, list[str]] | None:
    row = conn.execute(
        "SELECT piece_size, hashes FROM content_pieces WHERE sha256 = ?", (sha256,)
    ).fetchone()
    return None if row is None else (int(row[0]), _split(bytes(row[1])))


def missing(conn: sqlite3.Connection) -> list[str]:
    """Content files with no piece hashes yet (stored before they existed), oldest first."""
    return [r[0] for r in conn.execute(
        "SELECT c.sha256 FROM contents c LEFT JOIN content_pieces p ON p.sha256 = c.sha256 "
        "WHERE p.sha256 IS NULL ORDER BY c.created_at"
    )]


def _split(raw: bytes) -> list[str]:
    return [raw[i:i + 32].hex() for i in range(0, len(raw), 32)]

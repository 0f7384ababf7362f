"""Piece hashes per content file: `hashes` holds the raw 32-byte digests, concatenated."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text

_STORE = text(
    "INSERT INTO content_pieces (sha256, piece_size, hashes) "
    "VALUES (:sha256, :piece_size, :hashes) ON CONFLICT (sha256) DO NOTHING"
)
_GET = text("SELECT piece_size, hashes FROM content_pieces WHERE sha256 = :sha256")
_MISSING = text(
    "SELECT c.sha256 FROM contents c LEFT JOIN content_pieces p ON p.sha256 = c.sha256 "
    "WHERE p.sha256 IS NULL ORDER BY c.created_at"
)


def store(conn: Connection, sha256: str, piece_size: int, hashes: Sequence[str]) -> None:
    """Record a file's piece hashes; the first recorded stay (they describe the same bytes)."""
    conn.execute(_STORE, {"sha256": sha256, "piece_size": piece_size,
                          "hashes": b"".join(bytes.fromhex(h) for h in hashes)})


def get(conn: Connection, sha256: str) -> tuple[int, list[str]] | None:
    row = conn.execute(_GET, {"sha256": sha256}).first()
    return None if row is None else (int(row.piece_size), _split(bytes(row.hashes)))


def missing(conn: Connection) -> list[str]:
    """Content files with no piece hashes yet (stored before they existed), oldest first."""
    return [str(sha) for sha in conn.execute(_MISSING).scalars()]


def _split(raw: bytes) -> list[str]:
    return [raw[i:i + 32].hex() for i in range(0, len(raw), 32)]

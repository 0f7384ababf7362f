"""Piece hashes: a file cut into fixed-size pieces, each named by its sha256.

The signed catalog carries, per item, the piece size and the lower-case hex sha256 of
every piece (the last one may be shorter), beside the whole file's sha256. A receiver
checks each piece as it arrives and fetches again only a piece that fails; the whole
file is still checked before it is ready.

`PieceCheck` is the receiving side: bytes are fed in order from some offset, and it
answers when a piece completed badly. It also keeps the whole file's running hash and
rolls it back with the piece, so a piece fetched again is hashed once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Final

PIECE_SIZE: Final = 4 << 20  # 4 MiB: a bad byte costs one piece, a 4 GiB film has 1,024
_READ: Final = 1 << 20


def piece_count(size: int, piece_size: int) -> int:
    return -(-size // piece_size) if size else 0


def piece_hashes(path: Path, piece_size: int = PIECE_SIZE) -> list[str]:
    """The sha256 of each piece of a file, in order (blocking: call it from a thread)."""
    out: list[str] = []
    with open(path, "rb") as f:
        while True:
            h = hashlib.sha256()
            left = piece_size
            while left > 0:
                block = f.read(min(_READ, left))
                if not block:
                    break
                h.update(block)
                left -= len(block)
            if left == piece_size:
                return out
            out.append(h.hexdigest())
            if left > 0:
                return out


def pieces_fit(size: int, piece_size: int, pieces: Sequence[str]) -> bool:
    """True when `pieces` can describe a file of `size` bytes cut every `piece_size`."""
    return piece_size > 0 and len(pieces) == piece_count(size, piece_size)


class BadPiece(Exception):
    """A piece hashed to something else than the catalog says."""

    def __init__(self, index: int, start: int, got: str) -> None:
        super().__init__(f"piece {index} (from byte {start}) hashed to {got[:12]}")
        self.index = index
        self.start = start
        self.got = got


class PieceCheck:
    """Checks a file's pieces as its bytes arrive in order, and keeps its whole hash.

    `feed(block)` raises `BadPiece` when a piece completes with the wrong hash; the
    check is then back at that piece's start (`offset`), and the bytes after it in the
    block are dropped. Without piece hashes (an old catalog) it only keeps the whole
    hash. Not thread-safe: one writer at a time (the download or import that owns it).
    """

    def __init__(self, size: int, piece_size: int = 0, pieces: Sequence[str] = ()) -> None:
        self.size = size
        self.checked = pieces_fit(size, piece_size, pieces)
        self.piece_size = piece_size if self.checked else max(size, 1)
        self._pieces = list(pieces) if self.checked else []
        self.reset()

    def reset(self) -> None:
        self.offset = 0
        self._whole = hashlib.sha256()
        self._at_piece = self._whole.copy()  # the whole hash as it was at the piece's start
        self._piece = hashlib.sha256()

    @property
    def piece_start(self) -> int:
        return self.offset - self.offset % self.piece_size

    def feed(self, block: bytes | memoryview) -> None:
        view = memoryview(block)
        while view:
            left_in_piece = self.piece_size - self.offset % self.piece_size
            part = view[:left_in_piece]
            self._piece.update(part)
            self._whole.update(part)
            self.offset += len(part)
            view = view[len(part):]
            if self.offset % self.piece_size == 0 or self.offset == self.size:
                self._end_piece()

    def _end_piece(self) -> None:
        index = (self.offset - 1) // self.piece_size
        got = self._piece.hexdigest()
        self._piece = hashlib.sha256()
        if self.checked and got != self._pieces[index]:
            start = index * self.piece_size
            self.offset = start
            self._whole = self._at_piece.copy()
            raise BadPiece(index, start, got)
        self._at_piece = self._whole.copy()

    def whole(self) -> str:
        return self._whole.hexdigest()


def check_prefix(check: PieceCheck, path: Path, length: int) -> int:
    """Feed the first `length` bytes of `path` into `check` (blocking).

    Returns how many of them hold: `length`, or the start of the first bad piece among
    them (the caller cuts the file there). A partial last piece is fed but can only be
    judged once the rest of it arrives."""
    with open(path, "rb") as f:
        while check.offset < length:
            block = f.read(min(_READ, length - check.offset))
            if not block:
                break
            try:
                check.feed(block)
            except BadPiece as e:
                return e.start
    return check.offset

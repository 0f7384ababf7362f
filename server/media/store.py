"""The content-addressed store: every file lives once, under its sha256.

    media/ab/abcdef...   (two-level fan-out so no directory grows huge)

Files arrive by rename from the uploads directory on the same filesystem, after being
fsynced, so a file under its hash is always whole. The directory entry is fsynced too.
"""

from __future__ import annotations

import os
from pathlib import Path

from shared.files import fsync_dir
from shared.hashing import is_sha256


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, src: Path, sha256: str) -> Path:
        """Move a fully written, fsynced file into place (blocking). Idempotent."""
        dest = self.path(sha256)
        if dest.exists():
            src.unlink(missing_ok=True)
            return dest
        dest.parent.mkdir(exist_ok=True)
        os.replace(src, dest)
        fsync_dir(dest.parent)
        return dest


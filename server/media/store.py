"""Where content files live, each once under its sha256: `BlobStore`, and its local-disk
form `MediaStore` (the S3-compatible one is `server.media.objects.S3Store`).

    media/ab/abcdef...   (two-level fan-out so no directory grows huge)

Files arrive by rename from the uploads directory on the same filesystem, after being
fsynced, so a file under its hash is always whole. The directory entry is fsynced too.

Every method is blocking (disk or network): call it from a thread. A store that cannot
be reached raises `StoreUnavailable`; the caller keeps its file and tries again later.
"""

from __future__ import annotations

import asyncio
import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from shared.files import fsync_dir
from shared.hashing import is_sha256


class StoreUnavailable(Exception):
    """The store did not answer (bucket down, network cut); nothing was changed."""


class StoreRefused(Exception):
    """The store answered no at start-up (no such bucket, keys refused): a setting is wrong."""


class BlobStore(ABC):
    """Content files by sha256. `put` takes a finished file; readers use `local_file`."""

    kind: str

    @abstractmethod
    def open(self) -> None:
        """Prepare the store (create the folder; check the bucket answers)."""

    @abstractmethod
    def put(self, src: Path, sha256: str) -> None:
        """Take a fully written, fsynced file: on return it is stored and `src` is gone.
        Idempotent. On StoreUnavailable `src` is left as it was."""

    @abstractmethod
    def exists(self, sha256: str) -> bool: ...

    @abstractmethod
    @contextmanager
    def local_file(self, sha256: str, scratch: Path) -> Iterator[Path]:
        """A file on this machine holding the content, for as long as the block runs
        (the store's own file, or a copy fetched into `scratch` and removed afterwards).
        FileNotFoundError when the store does not hold it."""


def check_sha256(sha256: str) -> str:
    if not is_sha256(sha256):
        raise ValueError(f"not a sha256: {sha256!r}")
    return sha256


class MediaStore(BlobStore):
    """The store on local disk under `root` (data_dir/media)."""

    kind = "disk"

    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256

    def relative(self, sha256: str) -> str:
        """The file's path under `root`, '/'-separated (for nginx's internal location)."""
        check_sha256(sha256)
        return f"{sha256[:2]}/{sha256}"

    def put(self, src: Path, sha256: str) -> None:
        dest = self.path(sha256)
        if dest.exists():
            src.unlink(missing_ok=True)
            return
        dest.parent.mkdir(exist_ok=True)
        os.replace(src, dest)
        fsync_dir(dest.parent)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    @contextmanager
    def local_file(self, sha256: str, scratch: Path) -> Iterator[Path]:
        path = self.path(sha256)
        if not path.is_file():
            raise FileNotFoundError(path)
        yield path


@asynccontextmanager
async def local_file(store: BlobStore, sha256: str, scratch: Path) -> AsyncIterator[Path]:
    """`store.local_file` from the event loop: entered and left on a worker thread."""
    cm = store.local_file(sha256, scratch)
    path = await asyncio.to_thread(cm.__enter__)
    try:
        yield path
    except BaseException as e:
        await asyncio.to_thread(cm.__exit__, type(e), e, e.__traceback__)
        raise
    else:
        await asyncio.to_thread(cm.__exit__, None, None, None)

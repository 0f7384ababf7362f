"""The terminal's exceptions, drawn as a tree so a caller can tell them apart.

    TerminalError
    ├── ServerUnreachable        no answer: no route, refused, timed out, link dropped
    ├── ServerRefused            the server answered with an error (status, code, details)
    ├── UntrustedServer          the server's signing key is not the one pinned here
    ├── CatalogRejected          bad signature, another terminal's, older than held (rollback)
    ├── DownloadFailed           one item could not be fetched this time
    │   ├── RangeMismatch        a resume answer did not continue exactly where we were
    │   └── HashMismatch         the bytes do not hash to the catalog's sha256
    │       └── BadSource        a peer sent a piece that does not verify: stop using it
    ├── DiskFull                 the quota or the free-space floor is reached
    ├── NotReady                 an item is not verified in the cache: it is never played
    ├── ItemError                an item named for a session matches none, or several
    └── VerifyInterrupted        a background check gave way (a session began, shutdown)
"""

from __future__ import annotations

from typing import Any


class TerminalError(Exception):
    """Anything the terminal reports about its work."""


class ServerUnreachable(TerminalError):
    """The server could not be reached; try again later."""


class ServerRefused(TerminalError):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.details = details or {}


class UntrustedServer(TerminalError):
    """The answering server does not hold the pinned signing key."""


class CatalogRejected(TerminalError):
    """A catalog that is not applied: the one held stays in force."""


class DownloadFailed(TerminalError):
    """One item could not be fetched this time."""


class RangeMismatch(DownloadFailed):
    """A resume answer that does not continue exactly at our offset: restart the file."""


class HashMismatch(DownloadFailed):
    """The received bytes are not the catalog's: the file is discarded."""


class BadSource(HashMismatch):
    """A source (a peer) sent a piece that does not verify; the pieces before it are kept."""


class DiskFull(TerminalError):
    """No room under the quota or above the free-space floor."""


class NotReady(TerminalError):
    """The item is not verified in the cache."""


class ItemError(TerminalError):
    """An item named for a session is unknown, ambiguous, or nothing named can play."""


class VerifyInterrupted(TerminalError):
    """A background hash stopped between two reads; the item's state is left as it was."""

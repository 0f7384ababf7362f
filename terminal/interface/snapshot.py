"""What the terminal says about itself, as data: the snapshot the status endpoint, the
CLI, the heartbeat and the TV interface read. Plain msgspec structs, no server code, so
the TV interface loads them without the HTTP server's libraries."""

from __future__ import annotations

import msgspec


class ItemStatus(msgspec.Struct, frozen=True, kw_only=True):
    sha256: str
    title: str
    size: int
    state: str
    bytes_present: int
    assigned: bool
    needed_by: str | None = None
    resumed_from: int | None = None
    error: str = ""
    kind: str = ""  # shared.protocol.ContentKind, for the menu by kind
    duration_seconds: float = 0.0
    bytes_from_peers: int = 0  # of this item, taken in from other terminals


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """Something keeping the terminal from being fully well, for the TV's home screen."""

    code: str  # not_enrolled | disk_full | catalog_stale | clock_unconfirmed | no_link | no_catalog
    message: str  # Chinese, plain words
    action: str  # Chinese: what the site manager can do


class NextSession(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    title: str
    starts_at: str  # RFC 3339, UTC
    items: list[str]
    ready: bool  # every item is in the cache
    missing: int = 0  # items not ready yet


class SessionSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The last session that ended on this box (already in the outbox)."""

    record_id: str
    title: str
    attendees: list[str]  # member numbers
    watched_seconds: float  # summed over the items
    ended_at: str
    delivered: bool = False
    problem: str = ""  # why it ended early (the player process was lost), Chinese / English


class SessionStatus(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    session_id: str | None
    attendees: list[str]
    playing: str | None
    position_seconds: float
    state: str
    duration_seconds: float = 0.0
    item_index: int = 0
    item_count: int = 0
    item_title: str = ""
    volume: int = 100


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    terminal_id: str
    village_code: str
    software_version: str
    condition: str  # "ok", or what keeps the terminal from being ok, in words
    server_url: str | None
    server_fingerprint: str | None
    catalog_version: int | None
    catalog_expires_at: str | None
    catalog_stale: bool
    download_window: str
    window_open: bool
    bandwidth_limit: int
    cache_bytes: int
    cache_quota: int
    disk_free: int
    disk_total: int
    items: list[ItemStatus]
    outbox_backlog: int
    outbox_quarantined: int  # refused by the server: held, offered again later
    session: SessionStatus | None = None
    outbox_problem: str = ""  # the server's words on the last held record
    outbox_retry_seconds: float | None = None  # until held records are offered again
    clock_confirmed: bool = False  # the wall clock agrees with the server's last answer
    clock_boot_id: str = ""
    clock_confirmed_at: str | None = None  # the server's time at its last answer (this run)
    clock_error_seconds: float | None = None  # wall clock minus the server's (+: ahead)
    enrolled: bool = True
    village_name: str = ""
    link: str = ""  # "connected", "searching" or why the county server is out of reach
    problems: list[Problem] = []
    next_session: NextSession | None = None
    scheduled: list[NextSession] = []  # every catalog session not yet run (what `session` can start)
    roster_members: int = 0
    last_session: SessionSummary | None = None

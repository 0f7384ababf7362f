"""The heartbeat: everything the server's fleet view shows about this terminal."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, cast, get_args

from shared.protocol import CachedItem, CacheState, Heartbeat, Playback
from shared.timeutil import utcnow
from terminal import constants as k
from terminal.interface.status import Snapshot

_STATES = set(get_args(CacheState))
_PlayState = Literal["playing", "paused", "buffering", "stopped", "error"]


def build(snapshot: Snapshot, terminal_clock: datetime | None = None) -> Heartbeat:
    """The heartbeat for `snapshot`; `terminal_clock` is the box's wall clock (now)."""
    cache = [
        CachedItem(sha256=i.sha256, state=cast(CacheState, i.state if i.state in _STATES else "queued"),
                   bytes_present=i.bytes_present, bytes_from_peers=i.bytes_from_peers)
        for i in snapshot.items if i.assigned
    ]
    playback = None
    s = snapshot.session
    if s is not None and s.playing is not None:
        playback = Playback(sha256=s.playing, state=cast(_PlayState, s.state),
                            position_seconds=max(0.0, s.position_seconds), session_id=s.session_id)
    return Heartbeat(
        software_version=k.SOFTWARE_VERSION, terminal_clock=terminal_clock or utcnow(),
        disk_free=snapshot.disk_free, disk_total=snapshot.disk_total, cache=cache, playback=playback,
        outbox_backlog=snapshot.outbox_backlog, catalog_version=snapshot.catalog_version,
        status=snapshot.condition[:200],
    )

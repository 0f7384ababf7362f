"""The terminal's sense of time: its wall clock, its monotonic clock, and whether the
county server has confirmed the wall clock.

After a power cut a set-top box's wall clock can read 2000-01-01, or years ahead, and an
NTP step can move it in the middle of a session. So:

* lengths are measured on the monotonic clock, never as a difference of wall times;
* every heartbeat answer carries the server's time: the clock keeps it as an *anchor*
  (at monotonic second m of this boot the server's clock read t), the latest one per
  boot, so any monotonic reading of that boot can be turned into a true time later;
* the wall clock is *confirmed* while this boot has an anchor and the wall clock still
  agrees with it (within `tolerance`): a step since the last answer un-confirms it.

Records carry the boot id, their monotonic readings and whether the clock was confirmed
(`shared.protocol.AttendanceRecord`); batches carry the anchors the server needs.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path

import msgspec

from shared.protocol import ClockAnchor
from shared.sqlite import Database
from shared.timeutil import utcnow
from terminal import constants as k
from terminal.storage import db as q

log = logging.getLogger(__name__)

ANCHORS = "clock_anchors"
KEEP_BOOTS = 50  # anchors of this many recent boots are kept for records still waiting
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")

WallClock = Callable[[], datetime]
MonotonicClock = Callable[[], float]


def read_boot_id() -> str:
    """The kernel's id of this boot; a fresh random id where there is none."""
    try:
        return BOOT_ID_FILE.read_text().strip() or uuid.uuid4().hex
    except OSError:
        return uuid.uuid4().hex


class Clock:
    """Wall and monotonic time for one boot, and the server's confirmations of it.

    `wall` (UTC-aware datetimes) and `monotonic` (seconds, never going back within a
    boot) are injectable so tests can set the box's clock anywhere; `boot_id` names the
    boot whose monotonic clock `monotonic` reads.
    """

    def __init__(
        self, database: Database, *, wall: WallClock = utcnow, monotonic: MonotonicClock = time.monotonic,
        boot_id: str | None = None, tolerance: float = k.CLOCK_TOLERANCE_SECONDS,
    ) -> None:
        self._db = database
        self.wall = wall
        self.monotonic = monotonic
        self.boot_id = boot_id or read_boot_id()
        self._tolerance = tolerance
        self._anchors: dict[str, ClockAnchor] = {}
        self.confirmed_at: datetime | None = None  # server time of the last confirmation
        self.offset_seconds: float | None = None  # server minus wall clock, then

    async def async_load(self) -> None:
        raw = await self._db.read(lambda c: q.get_kv(c, ANCHORS))
        if raw:
            try:
                held = msgspec.json.decode(raw, type=list[ClockAnchor])
            except msgspec.DecodeError:
                held = []
            self._anchors = {a.boot_id: a for a in held}
        if self.anchor is not None:  # restarted within a boot the server already answered in
            self.confirmed_at = self.anchor.server_time
            self.offset_seconds = -(self.error_seconds() or 0.0)

    def now(self) -> datetime:
        return self.wall()

    @property
    def anchor(self) -> ClockAnchor | None:
        """This boot's latest anchor."""
        return self._anchors.get(self.boot_id)

    def error_seconds(self) -> float | None:
        """How far the wall clock is from the server's time (+: ahead), by this boot's anchor."""
        a = self.anchor
        if a is None:
            return None
        true_now = a.server_time + timedelta(seconds=self.monotonic() - a.monotonic)
        return (self.wall() - true_now).total_seconds()

    def confirmed(self) -> bool:
        error = self.error_seconds()
        return error is not None and abs(error) <= self._tolerance

    async def async_confirm(self, server_time: datetime, sent: float, received: float) -> None:
        """The server answered `server_time` to a request sent at monotonic `sent` and
        answered by `received`: the middle of the two is the best guess of its moment."""
        anchor = ClockAnchor(boot_id=self.boot_id, monotonic=(sent + received) / 2,
                             server_time=server_time)
        first, was = self.anchor is None, self.confirmed()
        self._anchors[self.boot_id] = anchor
        self.confirmed_at = server_time
        self.offset_seconds = -(self.error_seconds() or 0.0)
        if not self.confirmed() and (first or was):  # once per change, not every heartbeat
            log.warning("the wall clock is %.0f s off the server's; record times are placed by "
                        "the server's clock", -self.offset_seconds)
        recent = sorted(self._anchors.values(), key=lambda a: a.server_time)[-KEEP_BOOTS:]
        self._anchors = {a.boot_id: a for a in recent}
        raw = msgspec.json.encode(recent).decode()
        await self._db.write(lambda c: q.set_kv(c, ANCHORS, raw))

    def anchors_for(self, boot_ids: Iterable[str | None]) -> list[ClockAnchor]:
        """The anchors held for these boots (for a batch naming them)."""
        return [self._anchors[b] for b in dict.fromkeys(boot_ids) if b is not None and b in self._anchors]

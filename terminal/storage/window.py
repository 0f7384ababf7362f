"""The download window: the hours, in county time, when downloads may run.

"22:00-06:00" spans midnight; an empty window means always. A site manager can open
the window until a given time (stored, so it survives a restart).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class DownloadWindow:
    start: time | None
    end: time | None
    tz: ZoneInfo

    @classmethod
    def parse(cls, text: str, tz: str = "Asia/Shanghai") -> DownloadWindow:
        zone = ZoneInfo(tz)
        text = text.strip()
        if not text:
            return cls(None, None, zone)
        try:
            a, b = (part.strip() for part in text.split("-"))
            start, end = time.fromisoformat(a), time.fromisoformat(b)
        except ValueError:
            raise ValueError(f"download window {text!r}: write it as HH:MM-HH:MM, e.g. 22:00-06:00") from None
        return cls(start, end, zone)

    def is_open(self, now: datetime, override_until: datetime | None = None) -> bool:
        if override_until is not None and now < override_until:
            return True
        if self.start is None or self.end is None or self.start == self.end:
            return True
        local = now.astimezone(self.tz).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def __str__(self) -> str:
        if self.start is None or self.end is None:
            return "always"
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

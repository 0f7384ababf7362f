"""Terminal settings, declared as data: each has a default and a line of help.

Built once from (lowest to highest) the defaults, a TOML file, `YUANJIAO_TERMINAL_*`
environment variables and command-line flags, then passed in; nothing reads settings
at import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared import settings
from terminal import constants as k

GiB = 1 << 30
MiB = 1 << 20
ENV_PREFIX = "YUANJIAO_TERMINAL_"


_setting = settings.setting


@dataclass(frozen=True)
class TerminalConfig:
    data_dir: Path = _setting(Path("var/terminal"), "database, cache and pinned key live here")
    terminal_id: str = _setting("", "this terminal point's id, e.g. T140121100001 (from the county)")
    village_code: str = _setting("", "the village code; taken from the terminal id when empty")
    terminal_token: str = _setting("", "enrollment token sent to the trusted server (Authorization: Bearer)")
    server_url: str = _setting("", "fallback server URL when mDNS and the stored address fail")
    cache_quota_bytes: int = _setting(64 * GiB, "most bytes the cache may hold")
    min_free_bytes: int = _setting(k.MIN_FREE_BYTES, "disk space kept free; below it downloads pause")
    bandwidth_limit: int = _setting(0, "download cap in bytes per second (0: no cap)")
    download_window: str = _setting("", "local hours downloads may run, e.g. 22:00-06:00 (empty: always)")
    timezone: str = _setting("Asia/Shanghai", "the county's time zone for the download window")
    zeroconf: bool = _setting(True, "find the server and advertise this terminal over mDNS")
    zeroconf_interfaces: tuple[str, ...] = _setting(
        ("all",), "interfaces mDNS uses: addresses, or 'all' for every interface"
    )
    status_host: str = _setting("0.0.0.0", "address of the small status endpoint")
    status_port: int = _setting(8760, "port of the status endpoint (0 picks a free one)")
    heartbeat_interval: float = _setting(k.HEARTBEAT_INTERVAL, "heartbeat period until the server says")
    token_rotation_days: float = _setting(
        k.TOKEN_ROTATION_DAYS, "ask the server for a new token when the one held is this old"
    )
    sync_interval: float = _setting(k.SYNC_INTERVAL, "seconds between catalog checks")
    outbox_interval: float = _setting(k.OUTBOX_INTERVAL, "seconds between outbox checks when idle")
    discovery_timeout: float = _setting(k.DISCOVERY_TIMEOUT, "seconds to wait for mDNS before falling back")
    backoff_initial: float = _setting(k.BACKOFF_INITIAL, "first retry delay after a failure, seconds")
    backoff_max: float = _setting(k.BACKOFF_MAX, "longest retry delay, seconds")
    session_save_seconds: float = _setting(k.SESSION_SAVE_SECONDS, "an open session is saved this often")
    outbox_batch: int = _setting(k.OUTBOX_BATCH, "attendance records per request")
    held_retry_seconds: float = _setting(
        k.HELD_RETRY_INITIAL, "a record the server refused is offered again after this long (doubling)")
    progress_log_seconds: float = _setting(k.PROGRESS_LOG_SECONDS, "download progress is logged this often")
    scrub_interval: float = _setting(
        k.SCRUB_INTERVAL, "every cached file is hashed again at least this often, seconds (7 days)"
    )
    scrub_rate_limit: int = _setting(
        k.SCRUB_RATE, "bytes per second the background hash may read (0: no cap)"
    )
    scrub_poll_seconds: float = _setting(k.SCRUB_POLL, "the scrub looks for due files this often")
    session_verify_lead: float = _setting(
        k.SESSION_VERIFY_LEAD, "a scheduled session's files are hashed again this long before it, seconds"
    )
    peer_serving: bool = _setting(
        True, "serve verified items to the county's other terminals (never while playing)")
    peer_max_uploads: int = _setting(2, "most peers served at once")
    peer_upload_limit: int = _setting(0, "bytes per second served to peers (0: no cap)")
    headless: bool = _setting(False, "play with no video or audio output (tests, servers)")
    video_output: str = _setting("", "libvlc video output: xcb_x11 (no GPU), gl (empty: libvlc picks)")
    audio_output: str = _setting("", "libvlc audio output: alsa, pulse, dummy (empty: libvlc picks)")
    playback_rate: float = _setting(1.0, "playback rate (tests play faster)")
    auto_start_sessions: bool = _setting(True, "start scheduled sessions at their time by themselves")

    def __post_init__(self) -> None:
        if not self.village_code and self.terminal_id.startswith("T"):
            object.__setattr__(self, "village_code", self.terminal_id[1:])

    @property
    def db_path(self) -> Path:
        return self.data_dir / "terminal.sqlite3"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def clean_marker(self) -> Path:
        return self.data_dir / "clean-shutdown"

    def replace(self, **changes: Any) -> TerminalConfig:
        return dataclasses.replace(self, **changes)


def _port(value: int) -> str | None:
    return None if value <= 65535 else "must be from 0 to 65535"


# Beyond every setting's generic checks (ASCII numbers, never negative, finite): values
# that would make the daemon spin or never act.
CHECKS: dict[str, settings.Check] = {
    "status_port": _port,
    "heartbeat_interval": settings.positive, "token_rotation_days": settings.positive,
    "sync_interval": settings.positive, "outbox_interval": settings.positive,
    "discovery_timeout": settings.positive, "backoff_initial": settings.positive,
    "backoff_max": settings.positive, "session_save_seconds": settings.positive,
    "outbox_batch": settings.positive, "progress_log_seconds": settings.positive,
    "playback_rate": settings.positive,
}


def load_config(
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> TerminalConfig:
    """Defaults < TOML file < YUANJIAO_TERMINAL_* environment < explicit overrides (flags).

    Raises settings.SettingError (one line naming the setting) for an impossible value."""
    return settings.load(TerminalConfig, ENV_PREFIX, file, env, overrides, CHECKS)


def describe() -> str:
    """Every setting with its default and help, for `settings` and the docs."""
    return settings.describe(TerminalConfig)

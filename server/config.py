"""Server settings, declared as data: each has a default and a line of help.

Built once from (lowest to highest) the defaults, a TOML file, `YUANJIAO_*` environment
variables and command-line flags, then passed in; nothing reads settings at import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared import settings

GiB = 1 << 30
MiB = 1 << 20


_setting = settings.setting


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path = _setting(Path("var"), "where the database, media store and keys live")
    host: str = _setting("127.0.0.1", "address to listen on; loopback until deployment opens it up")
    port: int = _setting(8750, "TCP port to listen on (0 picks a free one)")
    server_name: str = _setting("县远教内容服务器", "name shown to terminals and in the console")
    max_upload_bytes: int = _setting(8 * GiB, "largest upload accepted (413 above it)")
    min_free_bytes: int = _setting(512 * MiB, "disk space kept free; uploads that would eat it get 507")
    upload_expiry_hours: float = _setting(72.0, "unfinished uploads are removed after this long")
    ffprobe_timeout: float = _setting(60.0, "seconds ffprobe/ffmpeg may take on one upload")
    heartbeat_interval: float = _setting(60.0, "seconds between terminal heartbeats (told to terminals)")
    online_missed_heartbeats: int = _setting(3, "a terminal is online if seen within this many intervals")
    piece_size: int = _setting(
        4 * MiB, "bytes per piece whose sha256 goes into catalogs (set once; contents keep theirs)"
    )
    usb_mount_roots: tuple[str, ...] = _setting(
        ("/media", "/mnt", "/run/media"),
        "the console may write and read USB bundles only in folders under these",
    )
    catalog_ttl_hours: float = _setting(24.0 * 14, "a signed catalog expires this long after it is made")
    session_horizon_days: int = _setting(60, "scheduled sessions this far ahead go into catalogs")
    counted_min_seconds: float = _setting(60.0, "watched seconds for a session to count a member as trained")
    session_hours: float = _setting(12.0, "a console login lasts this long")
    login_max_failures: int = _setting(5, "wrong passwords (per user and address) before 429")
    login_cooldown_seconds: float = _setting(300.0, "how long logins stay refused after that")
    trust_proxy: bool = _setting(
        False, "trust X-Forwarded-Proto/-For from the reverse proxy (set when behind nginx)"
    )
    tls_certificate: Path | None = _setting(
        None, "serve HTTPS directly with this PEM certificate (else TLS ends at the proxy)"
    )
    tls_key: Path | None = _setting(None, "the PEM private key of tls_certificate")
    tls_pin_sha256: str | None = _setting(
        None, "sha256 of the certificate terminals should pin, when TLS ends at a proxy"
    )
    zeroconf: bool = _setting(True, "advertise the server over mDNS and browse for terminals")
    zeroconf_interfaces: tuple[str, ...] = _setting(
        ("127.0.0.1",), "interfaces mDNS uses: addresses, or 'all' for every interface"
    )
    address_poll_seconds: float = _setting(
        30.0, "with 'all' interfaces, how often to look for changed addresses and announce again"
    )

    @property
    def db_path(self) -> Path:
        return self.data_dir / "yuanjiao.sqlite3"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "signing-key.pem"

    def replace(self, **changes: Any) -> ServerConfig:
        return dataclasses.replace(self, **changes)


def load_config(
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServerConfig:
    """Defaults < TOML file < YUANJIAO_* environment < explicit overrides (flags)."""
    return settings.load(ServerConfig, "YUANJIAO_", file, env, overrides)


def describe() -> str:
    """Every setting with its default and help, for `yuanjiao-server settings`."""
    return settings.describe(ServerConfig)

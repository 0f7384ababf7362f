"""Server settings, declared as data: each has a default and a line of help.

Built once from (lowest to highest) the defaults, a TOML file, `YUANJIAO_*` environment
variables and command-line flags, then passed in; nothing reads settings at import.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.db import normalise_url, sqlite_url
from server.queries import rollups
from shared import settings

GiB = 1 << 30
MiB = 1 << 20


_setting = settings.setting
positive = settings.positive
MAX_NAME = 200


def _not_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _display_name(value: str) -> str | None:
    if not value.strip():
        return "must not be empty"
    return f"is longer than {MAX_NAME} characters" if len(value) > MAX_NAME else None


def _time_zone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "is not a time zone name of the IANA database (for example Asia/Shanghai)"
    return None


def _database_url(value: str) -> str | None:
    if not value:
        return None
    try:
        normalise_url(value)
    except ValueError as e:
        return str(e)
    return None


def _sha256(value: str) -> str | None:
    # as server/tls.py reads it: openssl's AB:CD:... form is fine too
    if re.fullmatch(r"[0-9a-f]{64}", value.replace(":", "").lower()):
        return None
    return "must be a sha256: 64 hex digits (colons allowed, as openssl prints it)"


def _store_kind(value: str) -> str | None:
    return None if value in ("disk", "s3") else "must be 'disk' or 's3'"


def _addressing(value: str) -> str | None:
    return None if value in ("auto", "path", "virtual") else "must be 'auto', 'path' or 'virtual'"


def _base_url(value: str) -> str | None:
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        return "must be an http:// or https:// URL without query (e.g. https://cdn.example.cn/media)"
    return None


def _accel_prefix(value: str) -> str | None:
    if not re.fullmatch(r"/[A-Za-z0-9_\-/]*/", value):
        return "must be an internal nginx location path beginning and ending with '/' (e.g. /_media/)"
    return None


def _interfaces(value: tuple[str, ...]) -> str | None:
    if value == ("all",):
        return None
    if not value:
        return "must name at least one address, or 'all'"
    for v in value:
        try:
            ipaddress.IPv4Address(v)
        except ValueError:
            return f"{v!r} is not an IPv4 address (give addresses, or 'all')"
    return None


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path = _setting(Path("var"), "where the database, media store and keys live")
    database_url: str = _setting(
        "", "the database: empty for the SQLite file in data_dir, or "
        "postgresql://user:password@host:port/name", check=_database_url,
    )
    host: str = _setting(
        "127.0.0.1", "address to listen on; loopback until deployment opens it up", check=_not_empty
    )
    port: int = _setting(8750, "TCP port to listen on (0 picks a free one)", high=65535)
    server_name: str = _setting(
        "县远教内容服务器", "name shown to terminals and in the console (mDNS: its first 63 bytes)",
        check=_display_name,
    )
    max_upload_bytes: int = _setting(8 * GiB, "largest upload accepted (413 above it)", check=positive)
    min_free_bytes: int = _setting(512 * MiB, "disk space kept free; uploads that would eat it get 507")
    write_reserve_bytes: int = _setting(
        64 * MiB, "at or below this much free disk the server counts as full: terminal writes get "
        "507 with Retry-After before touching the database"
    )
    upload_expiry_hours: float = _setting(
        72.0, "an unfinished upload is removed this long after its last PATCH (or its creation)",
        check=positive,
    )
    ffprobe_timeout: float = _setting(60.0, "seconds ffprobe/ffmpeg may take on one upload", check=positive)
    heartbeat_interval: float = _setting(
        60.0, "seconds between terminal heartbeats (told to terminals)", check=positive
    )
    online_missed_heartbeats: int = _setting(
        3, "a terminal is online if seen within this many intervals", check=positive
    )
    catalog_ttl_hours: float = _setting(
        24.0 * 14, "a signed catalog expires this long after it is made", check=positive
    )
    session_horizon_days: int = _setting(
        60, "scheduled sessions this far ahead go into catalogs", check=positive
    )
    attendance_concurrency: int = _setting(
        48, "attendance batches decoded and stored at once; more wait their turn (keeps memory flat)",
        check=positive,
    )
    piece_size: int = _setting(
        4 * MiB, "bytes per piece whose sha256 goes into catalogs (set once; contents keep theirs)",
        check=positive,
    )
    usb_mount_roots: tuple[str, ...] = _setting(
        ("/media", "/mnt", "/run/media"),
        "the console may write and read USB bundles only in folders under these",
    )
    counted_min_seconds: float = _setting(60.0, "watched seconds for a session to count a member as trained")
    member_target_sessions: int = _setting(
        12, "sessions a member is expected to attend in a year (the learning record's target)",
        check=positive,
    )
    member_target_hours: float = _setting(
        24.0, "hours a member is expected to watch in a year (the learning record's target)",
        check=positive,
    )
    time_zone: str = _setting("Asia/Shanghai", "the county's time zone, in which the console shows times",
                              check=_time_zone)
    session_hours: float = _setting(12.0, "a console login lasts this long", check=positive)
    login_max_failures: int = _setting(5, "wrong passwords (per user and address) before 429", check=positive)
    login_cooldown_seconds: float = _setting(300.0, "how long logins stay refused after that")
    login_account_max_failures: int = _setting(
        20, "wrong passwords for one account, from any addresses, before the account is locked"
    )
    login_account_lock_seconds: float = _setting(
        60.0, "first lock of an account; each lock that follows soon after doubles it"
    )
    login_account_lock_max_seconds: float = _setting(3600.0, "longest account lock")
    known_device_days: float = _setting(
        180.0, "a browser that logged in successfully is known this long; a known browser "
        "may still log in while its account is locked"
    )
    header_timeout: float = _setting(
        10.0, "seconds a new connection has to send a complete request head, else it is closed"
    )
    keepalive_timeout: float = _setting(
        30.0, "seconds an idle keep-alive connection stays open (also bounds later request heads)"
    )
    max_connections: int = _setting(
        1000, "concurrent connections at most (kept below the open-file limit); beyond it the "
        "oldest connection still without a request head is closed, else the new one is refused"
    )
    max_waiting_per_address: int = _setting(
        32, "connections one address may hold open before sending a request; beyond it, its "
        "oldest such connection is closed"
    )
    trust_proxy: bool = _setting(
        False, "trust X-Forwarded-Proto/-For from the reverse proxy (set when behind nginx)"
    )
    tls_certificate: Path | None = _setting(
        None, "serve HTTPS directly with this PEM certificate (else TLS ends at the proxy)"
    )
    tls_key: Path | None = _setting(None, "the PEM private key of tls_certificate")
    tls_pin_sha256: str | None = _setting(
        None, "sha256 of the certificate terminals should pin, when TLS ends at a proxy", check=_sha256
    )
    zeroconf: bool = _setting(True, "advertise the server over mDNS and browse for terminals")
    zeroconf_interfaces: tuple[str, ...] = _setting(
        ("127.0.0.1",), "interfaces mDNS uses: addresses, or 'all' for every interface", check=_interfaces
    )
    address_poll_seconds: float = _setting(
        30.0, "with 'all' interfaces, how often to look for changed addresses and announce again",
        check=positive
    )
    media_store: str = _setting(
        "disk", "where content files live: 'disk' (data_dir/media) or 's3' (an S3-compatible bucket; "
        "see the s3_* settings)", check=_store_kind,
    )
    s3_endpoint_url: str | None = _setting(
        None, "the S3-compatible endpoint, e.g. https://oss-cn-hangzhou.aliyuncs.com or "
        "http://minio.county.lan:9000 (none: Amazon S3 itself)", check=_base_url,
    )
    s3_bucket: str = _setting("", "the bucket holding content files, each under its sha256")
    s3_region: str = _setting("us-east-1", "the bucket's region, as the provider names it (signing needs it)")
    s3_addressing_style: str = _setting(
        "auto", "'path' (endpoint/bucket/key: MinIO, Ceph RGW) or 'virtual' (bucket.endpoint/key: "
        "OSS, COS, OBS require it); 'auto' lets the client choose", check=_addressing,
    )
    s3_access_key_id: str | None = _setting(
        None, "access key id (better from the environment: YUANJIAO_S3_ACCESS_KEY_ID); none: the "
        "usual AWS_* environment and files"
    )
    s3_secret_access_key: str | None = _setting(
        None, "secret key (better YUANJIAO_S3_SECRET_ACCESS_KEY, or s3_secret_file)"
    )
    s3_secret_file: Path | None = _setting(
        None, "a file (mode 0600) whose first line is the secret key; used when s3_secret_access_key "
        "is not set"
    )
    s3_presign_seconds: int = _setting(
        300, "a terminal is sent to a signed bucket URL valid this long (seconds); it only has to "
        "start the transfer in time", low=10, high=7 * 24 * 3600,
    )
    s3_public_base_url: str | None = _setting(
        None, "a CDN (or public bucket) URL in front of the bucket: terminals are sent to "
        "<this>/<sha256> instead of a signed bucket URL", check=_base_url,
    )
    s3_multipart_bytes: int = _setting(
        64 * MiB, "files larger than this go to the bucket in multipart uploads of this many "
        "bytes per part", low=5 * MiB, high=5 * GiB,
    )
    s3_timeout_seconds: float = _setting(
        10.0, "seconds to connect to / wait on the bucket before it counts as unreachable", check=positive
    )
    store_retry_seconds: float = _setting(
        30.0, "while the bucket is unreachable: Retry-After given to clients, and how often the "
        "server retries storing finished uploads", check=positive,
    )
    accel_redirect_prefix: str | None = _setting(
        None, "behind nginx: answer an authorised /blobs request with X-Accel-Redirect to this "
        "internal location (aliasing data_dir/media), so nginx sends the bytes; none: the server "
        "sends them itself", check=_accel_prefix,
    )

    @property
    def db_path(self) -> Path:
        """The embedded default's SQLite file (used when `database_url` is empty)."""
        return self.data_dir / "yuanjiao.sqlite3"

    @property
    def database(self) -> str:
        """The database URL in effect."""
        return self.database_url or sqlite_url(self.db_path)

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "signing-key.pem"

    def __post_init__(self) -> None:
        if self.attendance_concurrency < 1:
            raise ValueError("attendance_concurrency must be at least 1")
        if self.media_store == "s3" and not self.s3_bucket.strip():
            raise ValueError("media_store = 's3' needs s3_bucket")

    def replace(self, **changes: Any) -> ServerConfig:
        return dataclasses.replace(self, **changes)

    @property
    def rollup_basis(self) -> rollups.Basis:
        """What the report roll-ups are computed against (server/queries/rollups.py)."""
        return rollups.Basis(self.county_tz, self.counted_min_seconds)

    @property
    def county_tz(self) -> ZoneInfo:
        """The county's time zone (`time_zone`): its days, months and times in the console."""
        return ZoneInfo(self.time_zone)


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

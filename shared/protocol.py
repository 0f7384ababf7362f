"""Wire models shared by the county server and the terminals.

Every JSON body exchanged between the two programs is one of these structs, encoded
and validated with msgspec. Times are timezone-aware UTC (RFC 3339 on the wire);
content is named by the lower-case hex sha256 of its bytes.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

Sha256 = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$", description="lower-case hex sha256")]
Seconds = Annotated[float, Meta(ge=0)]
# every count on the wire fits SQLite's 64-bit integer: a bigger one is a 422, not a crash
NonNegInt = Annotated[int, Meta(ge=0, le=2**63 - 1)]
ShortText = Annotated[str, Meta(min_length=1, max_length=200)]
UtcTime = Annotated[datetime, Meta(tz=True, description="RFC 3339 time with a UTC offset")]


class ContentKind(StrEnum):
    FEATURE_FILM = "feature_film"  # 专题片
    LECTURE = "lecture"  # 党课 / 讲座
    FARMING = "farming_technique"  # 农业实用技术


# --- catalog ---------------------------------------------------------------------------


class CatalogItem(Struct, frozen=True, kw_only=True):
    sha256: Sha256
    size: NonNegInt
    content_id: str
    title: str
    kind: ContentKind
    duration_seconds: Seconds
    needed_by: UtcTime | None = None
    poster_sha256: Sha256 | None = None
    poster_size: NonNegInt | None = None
    # The sha256 of each `piece_size`-byte piece, in order (the last may be shorter);
    # empty from a server that has not hashed the pieces yet: the whole-file check stays.
    piece_size: NonNegInt = 0
    pieces: list[Sha256] = []


class SessionPlan(Struct, frozen=True, kw_only=True):
    """A scheduled session: play these items, in order, at this time."""

    session_id: str
    title: str
    starts_at: UtcTime
    items: list[Sha256]


class Catalog(Struct, frozen=True, kw_only=True):
    """Exactly what one terminal must hold, and what it will play soon."""

    terminal_id: str
    village_code: str
    version: NonNegInt
    generated_at: UtcTime
    expires_at: UtcTime
    items: list[CatalogItem]
    sessions: list[SessionPlan]


class SignedCatalog(Struct, frozen=True, kw_only=True):
    """The catalog endpoint's body: the catalog's exact JSON bytes and their signature."""

    catalog: msgspec.Raw
    signature: str
    key_fingerprint: str


# --- heartbeat -------------------------------------------------------------------------

CacheState = Literal["ready", "downloading", "queued", "verifying", "corrupt", "failed"]


class CachedItem(Struct, frozen=True, kw_only=True):
    sha256: Sha256
    state: CacheState
    bytes_present: NonNegInt = 0
    bytes_from_peers: NonNegInt = 0  # of this item, taken in from other terminals (not the server)


class Playback(Struct, frozen=True, kw_only=True):
    sha256: Sha256
    state: Literal["playing", "paused", "buffering", "stopped", "error"]
    position_seconds: Seconds = 0.0
    session_id: str | None = None


class Heartbeat(Struct, frozen=True, kw_only=True):
    software_version: Annotated[str, Meta(max_length=64)]
    terminal_clock: UtcTime
    disk_free: NonNegInt
    disk_total: NonNegInt
    cache: list[CachedItem] = []
    playback: Playback | None = None
    outbox_backlog: NonNegInt = 0
    catalog_version: NonNegInt | None = None
    status: Annotated[str, Meta(max_length=200)] = "ok"
    # sharing between terminals (absent from older terminals): where this terminal serves
    # its verified items to peers, bytes it took in from the server and from peers since
    # it started, and peers it caught sending bytes that did not verify
    peer_port: Annotated[int, Meta(ge=1, le=65535)] | None = None
    bytes_from_server: NonNegInt = 0
    bytes_from_peers: NonNegInt = 0
    bad_peers: list[Annotated[str, Meta(max_length=64)]] = []
    lan_peers: list[Annotated[str, Meta(max_length=64)]] = []  # terminals heard by mDNS here


class HeartbeatAck(Struct, frozen=True, kw_only=True):
    server_time: UtcTime
    catalog_version: NonNegInt
    heartbeat_interval_seconds: float


# --- roster ----------------------------------------------------------------------------


class Member(Struct, frozen=True, kw_only=True):
    member_no: str
    name: str
    sex: str = ""
    branch: str = ""
    category: str = ""


class Roster(Struct, frozen=True, kw_only=True):
    village_code: str
    village_name: str
    members: list[Member]


# --- attendance ------------------------------------------------------------------------


class WatchedItem(Struct, frozen=True, kw_only=True):
    sha256: Sha256
    watched_seconds: Annotated[float, Meta(ge=0, le=86_400)]


MAX_ATTENDEES = 1000  # more than any village holds; a longer list is refused (422)
MAX_ITEMS = 200  # items in one record
MAX_BATCH = 1000  # records in one batch
BootId = Annotated[str, Meta(min_length=1, max_length=64, description="the terminal's boot id")]
Monotonic = Annotated[float, Meta(ge=0, le=1e10, description="seconds on the terminal's monotonic clock")]


class AttendanceRecord(Struct, frozen=True, kw_only=True):
    """One viewing session as the terminal closed it. Final: never sent twice differently.

    `started_at` is the terminal's wall clock at the start; `ended_at` is `started_at` plus
    the session's length measured on the monotonic clock, so it never precedes the start.
    The optional fields (absent from older terminals) let the server place a record whose
    wall clock was wrong: `clock_confirmed` says the wall clock agreed with the server's
    (within a few minutes, with no step since) when the session started; `boot_id` and the
    monotonic readings tie the record to a clock anchor of the same boot (see
    `ClockAnchor`). They are not part of the record's identity: a record sent again with
    a different anchor is the same record.
    Limits: at most `MAX_ATTENDEES` attendees and `MAX_ITEMS` items (else 422).
    """

    record_id: Annotated[str, Meta(min_length=1, max_length=64)]
    seq: NonNegInt
    started_at: UtcTime
    ended_at: UtcTime
    items: Annotated[list[WatchedItem], Meta(max_length=MAX_ITEMS)]
    attendees: Annotated[list[Annotated[str, Meta(min_length=1, max_length=32)]],
                         Meta(max_length=MAX_ATTENDEES)]
    session_id: str | None = None
    title: str = ""
    clock_confirmed: bool | None = None
    boot_id: BootId | None = None
    started_monotonic: Monotonic | None = None
    ended_monotonic: Monotonic | None = None


class ClockAnchor(Struct, frozen=True, kw_only=True):
    """At `monotonic` seconds of boot `boot_id`, the server's clock read `server_time`.

    The terminal learns one from every heartbeat answer; with it the server turns any
    monotonic reading of that boot into a true time, whatever the wall clock did.
    """

    boot_id: BootId
    monotonic: Monotonic
    server_time: UtcTime


class AttendanceBatch(Struct, frozen=True, kw_only=True):
    """Records to store, at most `MAX_BATCH` (else 422).

    `terminal_clock` is the sender's wall clock at sending; `boot_id` and `monotonic` its
    boot and monotonic clock at the same moment (so the receive time anchors that boot);
    `anchors` the latest anchor the terminal holds for other boots its records name.
    """

    terminal_clock: UtcTime
    records: Annotated[list[AttendanceRecord], Meta(min_length=1, max_length=MAX_BATCH)]
    boot_id: BootId | None = None
    monotonic: Monotonic | None = None
    anchors: Annotated[list[ClockAnchor], Meta(max_length=100)] = []


class AttendanceAck(Struct, frozen=True, kw_only=True):
    """The ids now safely stored (new or already held): the terminal may delete them."""

    accepted: list[str]
    duplicates: NonNegInt = 0


# --- errors ----------------------------------------------------------------------------


class ErrorDetail(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """`message` is Chinese (specific, for the person reading), `message_en` English."""

    code: str
    message: str
    message_en: str = ""
    details: dict[str, Any] | None = None


class ErrorBody(Struct, frozen=True, kw_only=True):
    """The one error shape: {"error": {"code", "message" (Chinese), "message_en", "details"?}}."""

    error: ErrorDetail


def encode(value: object) -> bytes:
    return msgspec.json.encode(value)


# --- enrollment ------------------------------------------------------------------------


class EnrollRequest(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a site manager types into a new terminal: the county's one-time code."""

    code: Annotated[str, Meta(min_length=1, max_length=64)]
    software_version: Annotated[str, Meta(max_length=64)] = ""
    # base64 raw Ed25519 public key of the terminal's own key pair: it signs what the
    # terminal writes on a USB stick. Absent from terminals older than USB bundles.
    public_key: Annotated[str, Meta(max_length=64)] | None = None


class Enrollment(Struct, frozen=True, kw_only=True):
    """The server's answer: who the terminal is, its secret, and the key to pin."""

    terminal_id: str
    village_code: str
    village_name: str
    token: str  # shown once; the server keeps only its hash
    server_id: str
    server_name: str
    public_key: str  # base64 raw Ed25519 public key that signs every catalog
    key_fingerprint: str
    tls_certificate_sha256: str | None = None  # pin this certificate when talking HTTPS


class TokenRotation(Struct, frozen=True, kw_only=True):
    token: str
    previous_valid_until: UtcTime

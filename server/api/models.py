"""Request and response bodies of the admin API (the terminal API uses shared.protocol)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from shared.protocol import ContentKind, Sha256, UtcTime

Title = Annotated[str, Meta(min_length=1, max_length=200)]
Code = Annotated[str, Meta(min_length=1, max_length=32)]


class ServerInfo(Struct, frozen=True, kw_only=True):
    server_id: str
    name: str
    api_version: str
    software_version: str
    key_fingerprint: str
    public_key: str
    challenge_signature: str | None = None  # over signing.proof_message(challenge), if asked
    time_zone: str = "Asia/Shanghai"  # the county's, for showing times


class ContentOut(Struct, frozen=True, kw_only=True):
    id: str
    sha256: Sha256
    size: int
    title: str
    kind: ContentKind
    description: str
    original_filename: str
    duration_seconds: float
    container: str
    video_codec: str
    audio_codec: str | None
    width: int | None
    height: int | None
    poster_sha256: Sha256 | None
    poster_size: int | None
    created_at: str
    county: str | None = None  # the county whose account uploaded it (its own); null: the province's


class ContentReach(Struct, frozen=True, kw_only=True):
    """How far a content has gone: assignments, terminals they reach, terminals holding it."""

    content_id: str
    assignments: int
    targeted: int
    holding: int
    bytes_from_server: int = 0  # bytes of it that left this server through /blobs
    bytes_from_peers: int = 0  # bytes of it terminals took in from each other
    # False for a county's account: the server counts the bytes it sends per content, not
    # per county, so `bytes_from_server` (0) is no figure of that county's.
    bytes_from_server_known: bool = True


class UsageAssignment(Struct, frozen=True, kw_only=True):
    id: str
    scope: Literal["county", "unit", "village", "terminal"]
    target: str
    target_name: str | None
    needed_by: str | None


class UsageSession(Struct, frozen=True, kw_only=True):
    id: str
    title: str
    starts_at: str


class UsageTerminal(Struct, frozen=True, kw_only=True):
    terminal_id: str
    village_name: str
    unit_name: str
    holding: bool  # reported the file ready in its last heartbeat
    targeted: bool  # an assignment reaches it


class ContentUsage(Struct, frozen=True, kw_only=True):
    """Where one content is used; what retiring it removes."""

    content_id: str
    title: str
    assignments: list[UsageAssignment]
    sessions: list[UsageSession]
    terminals: list[UsageTerminal]


class ContentPatch(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Title | None = None
    kind: ContentKind | None = None
    description: Annotated[str, Meta(max_length=4000)] | None = None
    # true (the province's account): a county's own content becomes the province's
    whole_province: bool | None = None


Scope = Literal["county", "unit", "village", "terminal"]


class AssignmentIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    content_id: Annotated[str, Meta(min_length=1, max_length=64)]
    scope: Scope
    target: Annotated[str, Meta(max_length=64)] = ""
    needed_by: UtcTime | None = None


class AssignmentOut(Struct, frozen=True, kw_only=True):
    id: str
    content_id: str
    title: str
    scope: Scope
    target: str
    needed_by: str | None
    created_at: str


class SessionIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Title
    starts_at: UtcTime
    content_ids: Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(min_length=1, max_length=50)]
    village_codes: Annotated[list[Code], Meta(min_length=1, max_length=1000)]


ContentIds = Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(min_length=1, max_length=50)]


class SessionPatch(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Title | None = None
    starts_at: UtcTime | None = None
    content_ids: ContentIds | None = None
    village_codes: Annotated[list[Code], Meta(min_length=1, max_length=1000)] | None = None


class RollCallMember(Struct, frozen=True, kw_only=True):
    member_no: str
    name: str


class RollCallEntry(Struct, frozen=True, kw_only=True):
    """One sitting of a session at one terminal, with the members signed in."""

    terminal_id: str
    village_name: str
    unit_name: str
    started_at: str
    ended_at: str
    watched_seconds: float
    members: list[RollCallMember]


class SessionItemOut(Struct, frozen=True, kw_only=True):
    id: str
    sha256: Sha256
    title: str


class SessionOut(Struct, frozen=True, kw_only=True):
    id: str
    title: str
    starts_at: str
    created_at: str
    items: list[SessionItemOut]
    villages: list[str]


class Created(Struct, frozen=True, kw_only=True):
    id: str


class UnitOut(Struct, frozen=True, kw_only=True):
    code: str
    name: str
    kind: str
    villages: int


class VillageOut(Struct, frozen=True, kw_only=True):
    code: str
    name: str
    unit_code: str
    unit_name: str
    kind: str
    terrain: str
    members: int
    terminals: int


class TerminalIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    village_code: Code
    id: Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")] | None = None
    name: Annotated[str, Meta(max_length=100)] = ""


class FleetTerminal(Struct, frozen=True, kw_only=True):
    id: str
    name: str
    village_code: str
    village_name: str
    unit_code: str
    unit_name: str
    terrain: str
    online: bool
    last_seen: str | None
    last_address: str | None
    software_version: str | None
    disk_free: int | None
    disk_total: int | None
    outbox_backlog: int | None
    catalog_version: int | None
    clock_skew_seconds: float | None  # terminal clock minus the server's at the last heartbeat
    status: str | None
    playing: str | None
    ready_items: int
    discovered: bool = False
    clock_problem: bool = False  # |clock_skew_seconds| beyond 300 s: records need placing
    enrolled: bool = False  # has used an enrollment code
    revoked: bool = False  # its tokens were revoked by an admin
    last_usb_contact: str | None = None  # when it last wrote its returns on a USB stick


class SeenBox(Struct, frozen=True, kw_only=True):
    """A box heard over mDNS that is not enrolled yet: where a technician finds it."""

    name: str
    village: str
    version: str
    addresses: list[str]
    port: int


class FleetSummary(Struct, frozen=True, kw_only=True):
    total: int
    online: int
    catalog_version: int
    terminals: list[FleetTerminal]
    unenrolled: list[SeenBox] = []
    server_disk_full: bool  # terminal writes are being refused with 507 (see server.diskspace)
    server_free_bytes: int  # free bytes on the server's data disk


class TerminalReadiness(Struct, frozen=True, kw_only=True):
    terminal_id: str
    village_code: str
    village_name: str
    ready: bool
    missing: list[Sha256]


class SessionReadiness(Struct, frozen=True, kw_only=True):
    session_id: str
    title: str
    starts_at: str
    items: list[Sha256]
    ready: int
    total: int
    terminals: list[TerminalReadiness]


class RowProblem(Struct, frozen=True, kw_only=True):
    row: int
    member_no: str
    message: str


class ImportRow(Struct, frozen=True, kw_only=True):
    """One data row of a roster: what it did (or, in a dry run, would do)."""

    line: int  # the spreadsheet's row number, title rows and header counted
    member_no: str
    name: str
    village_code: str
    status: Literal["ok", "refused", "warning"]
    message: str  # Chinese, then English after " / "; empty when ok


class ImportReport(Struct, frozen=True, kw_only=True):
    """A roster import. `added`/`updated` count members stored (in a dry run: that would
    be); `rejected` counts refused rows; `errors`, `warnings` and `rows` list at most
    2,000 entries each (`rows_truncated` says when more were left out)."""

    added: int
    updated: int
    rejected: int
    errors: list[RowProblem]
    dry_run: bool = False
    skipped_title_rows: int = 0
    warnings: list[RowProblem] = []
    rows: list[ImportRow] = []
    rows_truncated: bool = False


class CoverageRow(Struct, frozen=True, kw_only=True):
    level: Literal["county", "unit", "village"]
    code: str
    name: str
    members: int
    trained: int
    rate: float


class CoverageReport(Struct, frozen=True, kw_only=True):
    start: str
    end: str
    min_seconds: float
    rows: list[CoverageRow]


class CountyRow(Struct, frozen=True, kw_only=True):
    """One county of the province (or, with `code` "", the whole province): terminal
    points and how many are online; members and how many were trained in the period;
    the sessions of the days ahead, the (session, terminal) pairs they need and how many
    of those terminals already hold every item."""

    code: str
    name: str
    villages: int
    terminals: int
    online: int
    members: int
    trained: int
    coverage_rate: float
    sessions_ahead: int
    due: int
    ready: int
    readiness_rate: float


class ProvinceReport(Struct, frozen=True, kw_only=True):
    start: str
    end: str
    horizon_days: int
    total: CountyRow
    counties: list[CountyRow]


class CountyName(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Title


class County(Struct, frozen=True, kw_only=True):
    """A county of the province: its code (six digits) and name ("" until named)."""

    code: str
    name: str


class MemberMatch(Struct, frozen=True, kw_only=True):
    member_no: str
    name: str
    village_code: str
    village_name: str
    unit_name: str
    branch: str


class MemberSearch(Struct, frozen=True, kw_only=True):
    matches: list[MemberMatch]
    truncated: bool  # more members match than were listed


class LearningEntry(Struct, frozen=True, kw_only=True):
    started_at: str
    ended_at: str
    terminal_id: str
    village_code: str
    village_name: str
    title: str
    session_id: str | None
    contents: str
    watched_seconds: float
    counted: bool


class LearningRecord(Struct, frozen=True, kw_only=True):
    member_no: str
    name: str
    village_code: str
    village_name: str
    sessions: int
    counted_sessions: int
    watched_seconds: float
    entries: list[LearningEntry]
    year: int = 0  # the county's current year, for the totals below
    year_sessions: int = 0  # counted sessions this year
    year_watched_seconds: float = 0.0  # in counted sessions this year
    target_sessions: int = 0  # the county's yearly targets for one member
    target_hours: float = 0.0


class TerminalRecord(Struct, frozen=True, kw_only=True):
    """One attendance record as the terminal reported it."""

    record_id: str
    session_id: str | None
    title: str
    started_at: str
    ended_at: str
    watched_seconds: float
    received_at: str
    attendees: int


class TerminalMonth(Struct, frozen=True, kw_only=True):
    terminal_id: str
    village_code: str
    village_name: str
    month: str
    sessions: int
    hours: float
    attendances: int
    meets_rule: bool


class TerminalMonthsReport(Struct, frozen=True, kw_only=True):
    rule_sessions: int
    rule_hours: float
    rows: list[TerminalMonth]


FlagReason = Literal["clock_unconfirmed", "ends_after_received", "ends_before_start", "not_on_roster"]


class FlaggedRecord(Struct, frozen=True, kw_only=True):
    """An attendance record stored but not counted until a person confirms it.

    `started_at`/`ended_at`: the server's suggested placement (UTC RFC 3339, null when it
    has none); `reported_started_at`: the time as the terminal wrote it.
    """

    terminal_id: str
    record_id: str
    village_code: str
    village_name: str
    title: str
    started_at: str | None
    ended_at: str | None
    reported_started_at: str
    received_at: str
    watched_seconds: int
    attendees: int
    reasons: list[FlagReason]


class FlaggedRecords(Struct, frozen=True, kw_only=True):
    records: list[FlaggedRecord]


class ConfirmIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`started_at`: when the session really began; null accepts the server's suggestion."""

    started_at: UtcTime | None = None

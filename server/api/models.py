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


class ContentPatch(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Title | None = None
    kind: ContentKind | None = None
    description: Annotated[str, Meta(max_length=4000)] | None = None


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
    clock_skew_seconds: float | None
    status: str | None
    playing: str | None
    ready_items: int
    discovered: bool = False
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


class ImportReport(Struct, frozen=True, kw_only=True):
    added: int
    updated: int
    rejected: int
    errors: list[RowProblem]


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

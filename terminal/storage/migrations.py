"""The terminal database's schema, as named migrations applied in order."""

from shared.sqlite import Migration

MIGRATIONS = (
    Migration("0001_state", """
CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""),
    Migration("0002_items", """
CREATE TABLE items (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    content_id TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT '',
    duration REAL NOT NULL DEFAULT 0,
    needed_by TEXT,                       -- stored time form; NULL: no deadline
    assigned INTEGER NOT NULL DEFAULT 1,  -- in the catalog in force
    state TEXT NOT NULL DEFAULT 'queued', -- queued downloading verifying ready corrupt failed
    bytes_present INTEGER NOT NULL DEFAULT 0,
    verified_mtime_ns INTEGER,            -- the file as it was when its hash was checked
    verified_at TEXT,
    last_played TEXT,
    resumed_from INTEGER,                 -- offset of the last resumed download, for status
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX items_order ON items (assigned, needed_by);
"""),
    Migration("0003_records", """
CREATE TABLE records (
    record_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    session_id TEXT,
    title TEXT NOT NULL DEFAULT '',
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    items TEXT NOT NULL DEFAULT '[]',      -- JSON [{sha256, watched_seconds}]
    attendees TEXT NOT NULL DEFAULT '[]',  -- JSON [member_no]
    state TEXT NOT NULL DEFAULT 'open'     -- open closed quarantined
);
CREATE INDEX records_state ON records (state, seq);
CREATE TABLE sessions_run (
    session_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL
);
CREATE TABLE roster (
    member_no TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sex TEXT NOT NULL DEFAULT '',
    branch TEXT NOT NULL DEFAULT ''
);
"""),
    # Times that survive a wrong wall clock: the boot and monotonic readings of each record,
    # and whether the server had confirmed the wall clock when it started. A record the
    # server refused is held (state 'quarantined') and offered again later, with why.
    Migration("0004_record_clock", """
ALTER TABLE records ADD COLUMN boot_id TEXT;
ALTER TABLE records ADD COLUMN started_mono REAL;
ALTER TABLE records ADD COLUMN ended_mono REAL;
ALTER TABLE records ADD COLUMN clock_confirmed INTEGER;
ALTER TABLE records ADD COLUMN refusal TEXT NOT NULL DEFAULT '';
"""),
    # Bytes of each item taken in from other terminals, for the county's per-film figures
    # (what did not have to leave the county server).
    Migration("0005_item_peer_bytes", """
ALTER TABLE items ADD COLUMN bytes_from_peers INTEGER NOT NULL DEFAULT 0;
"""),
)

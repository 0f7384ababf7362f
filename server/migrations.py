"""The server's schema, as named migrations applied in order. Never edit a shipped one."""

from shared.sqlite import Migration

MIGRATIONS = [
    Migration("0001_initial", """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('catalog_version', '1');

CREATE TABLE units (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE TABLE villages (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    unit_code TEXT NOT NULL REFERENCES units(code),
    kind TEXT NOT NULL DEFAULT 'village',
    terrain TEXT NOT NULL DEFAULT 'plain'
);
CREATE INDEX villages_unit ON villages(unit_code);

CREATE TABLE terminals (
    id TEXT PRIMARY KEY,
    village_code TEXT NOT NULL REFERENCES villages(code),
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen TEXT,
    last_address TEXT,
    heartbeat TEXT
);
CREATE INDEX terminals_village ON terminals(village_code);

CREATE TABLE terminal_items (
    terminal_id TEXT NOT NULL REFERENCES terminals(id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    bytes_present INTEGER NOT NULL,
    PRIMARY KEY (terminal_id, sha256)
) WITHOUT ROWID;

CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    length INTEGER NOT NULL,
    offset INTEGER NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    content_id TEXT
);

CREATE TABLE contents (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    original_filename TEXT NOT NULL DEFAULT '',
    duration_seconds REAL NOT NULL,
    container TEXT NOT NULL,
    video_codec TEXT NOT NULL,
    audio_codec TEXT,
    width INTEGER,
    height INTEGER,
    poster_sha256 TEXT,
    poster_size INTEGER,
    created_at TEXT NOT NULL
);

CREATE TABLE assignments (
    id TEXT PRIMARY KEY,
    content_id TEXT NOT NULL REFERENCES contents(id) ON DELETE CASCADE,
    scope TEXT NOT NULL CHECK (scope IN ('county', 'unit', 'village', 'terminal')),
    target TEXT NOT NULL DEFAULT '',
    needed_by TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (content_id, scope, target)
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX sessions_start ON sessions(starts_at);
CREATE TABLE session_items (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    content_id TEXT NOT NULL REFERENCES contents(id),
    PRIMARY KEY (session_id, position)
) WITHOUT ROWID;
CREATE TABLE session_villages (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    village_code TEXT NOT NULL REFERENCES villages(code),
    PRIMARY KEY (session_id, village_code)
) WITHOUT ROWID;
CREATE INDEX session_villages_village ON session_villages(village_code);

CREATE TABLE members (
    member_no TEXT PRIMARY KEY,
    village_code TEXT NOT NULL REFERENCES villages(code),
    name TEXT NOT NULL,
    sex TEXT NOT NULL DEFAULT '',
    ethnicity TEXT NOT NULL DEFAULT '',
    born TEXT,
    joined TEXT,
    branch TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL
);
CREATE INDEX members_village ON members(village_code);

CREATE TABLE attendance (
    terminal_id TEXT NOT NULL REFERENCES terminals(id),
    record_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    session_id TEXT,
    title TEXT NOT NULL DEFAULT '',
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    watched_seconds REAL NOT NULL,
    terminal_clock TEXT NOT NULL,
    received_at TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (terminal_id, record_id)
) WITHOUT ROWID;
CREATE INDEX attendance_started ON attendance(started_at);
CREATE TABLE attendance_items (
    terminal_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    watched_seconds REAL NOT NULL,
    PRIMARY KEY (terminal_id, record_id, sha256),
    FOREIGN KEY (terminal_id, record_id) REFERENCES attendance(terminal_id, record_id)
) WITHOUT ROWID;
CREATE TABLE attendance_members (
    terminal_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    member_no TEXT NOT NULL,
    PRIMARY KEY (terminal_id, record_id, member_no),
    FOREIGN KEY (terminal_id, record_id) REFERENCES attendance(terminal_id, record_id)
) WITHOUT ROWID;
CREATE INDEX attendance_members_member ON attendance_members(member_no);
"""),
    Migration("0002_admin_accounts", """
CREATE TABLE admins (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL
);
CREATE TABLE admin_sessions (
    id_hash TEXT PRIMARY KEY,
    admin_id TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX admin_sessions_admin ON admin_sessions(admin_id);
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    admin_id TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
"""),
    Migration("0003_enrollment", """
ALTER TABLE terminals ADD COLUMN enrolled_at TEXT;
ALTER TABLE terminals ADD COLUMN revoked_at TEXT;
CREATE TABLE enrollment_codes (
    code_hash TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL REFERENCES terminals(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
) WITHOUT ROWID;
CREATE INDEX enrollment_codes_terminal ON enrollment_codes(terminal_id);
CREATE TABLE terminal_tokens (
    token_hash TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL REFERENCES terminals(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    valid_until TEXT,
    revoked_at TEXT
) WITHOUT ROWID;
CREATE INDEX terminal_tokens_terminal ON terminal_tokens(terminal_id);
"""),
    # Integer keys for attendance: the child rows shrink from two text keys to one integer,
    # which makes durable ingest about three times faster.
    Migration("0004_attendance_integer_keys", """
CREATE TABLE attendance_new (
    id INTEGER PRIMARY KEY,
    terminal_id TEXT NOT NULL REFERENCES terminals(id),
    record_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    session_id TEXT,
    title TEXT NOT NULL DEFAULT '',
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    watched_seconds REAL NOT NULL,
    terminal_clock TEXT NOT NULL,
    received_at TEXT NOT NULL,
    digest TEXT NOT NULL,
    UNIQUE (terminal_id, record_id)
);
INSERT INTO attendance_new (terminal_id, record_id, seq, session_id, title, started_at, ended_at,
    watched_seconds, terminal_clock, received_at, digest)
SELECT terminal_id, record_id, seq, session_id, title, started_at, ended_at, watched_seconds,
    terminal_clock, received_at, digest FROM attendance ORDER BY received_at;
CREATE TABLE attendance_items_new (
    attendance_id INTEGER NOT NULL REFERENCES attendance_new(id),
    sha256 TEXT NOT NULL,
    watched_seconds REAL NOT NULL,
    PRIMARY KEY (attendance_id, sha256)
) WITHOUT ROWID;
INSERT INTO attendance_items_new (attendance_id, sha256, watched_seconds)
SELECT a.id, i.sha256, i.watched_seconds FROM attendance_items i
JOIN attendance_new a ON a.terminal_id = i.terminal_id AND a.record_id = i.record_id;
CREATE TABLE attendance_members_new (
    attendance_id INTEGER NOT NULL REFERENCES attendance_new(id),
    member_no TEXT NOT NULL,
    PRIMARY KEY (attendance_id, member_no)
) WITHOUT ROWID;
INSERT INTO attendance_members_new (attendance_id, member_no)
SELECT a.id, m.member_no FROM attendance_members m
JOIN attendance_new a ON a.terminal_id = m.terminal_id AND a.record_id = m.record_id;
DROP TABLE attendance_members;
DROP TABLE attendance_items;
DROP TABLE attendance;
ALTER TABLE attendance_new RENAME TO attendance;
ALTER TABLE attendance_items_new RENAME TO attendance_items;
ALTER TABLE attendance_members_new RENAME TO attendance_members;
CREATE INDEX attendance_started ON attendance(started_at);
CREATE INDEX attendance_members_member ON attendance_members(member_no);
"""),
    # Where a record is counted is the server's placement; what the terminal wrote is kept
    # beside it. A record whose time could not be placed (or that names people not on
    # its village's roster) is flagged: stored, listed, counted once a person confirms it.
    Migration("0005_attendance_placement", """
ALTER TABLE attendance ADD COLUMN reported_started_at TEXT;
ALTER TABLE attendance ADD COLUMN reported_ended_at TEXT;
ALTER TABLE attendance ADD COLUMN flags TEXT NOT NULL DEFAULT '';
ALTER TABLE attendance ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attendance ADD COLUMN confirmed_at TEXT;
UPDATE attendance SET reported_started_at = started_at, reported_ended_at = ended_at;
ALTER TABLE attendance_members ADD COLUMN on_roster INTEGER NOT NULL DEFAULT 1;
CREATE INDEX attendance_flagged ON attendance(received_at) WHERE flags != '' AND confirmed_at IS NULL;
"""),
    # Retired contents leave every catalog but keep their row: past attendance and the
    # learning records still name them.
    Migration("0006_content_retired", """
ALTER TABLE contents ADD COLUMN retired_at TEXT;
"""),
    # Login throttling moves from process memory into the database (it survives a
    # restart and is shared by several server processes), gains a per-account lock, and
    # browsers that logged in become known devices that may log in while it holds.
    Migration("0007_login_throttle", """
CREATE TABLE login_failures (
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    failures INTEGER NOT NULL,
    last_failure TEXT NOT NULL,
    PRIMARY KEY (name, address)
) WITHOUT ROWID;
CREATE INDEX login_failures_last ON login_failures(last_failure);
CREATE TABLE account_locks (
    name TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure TEXT NOT NULL,
    locks INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT
) WITHOUT ROWID;
CREATE INDEX account_locks_last ON account_locks(last_failure);
CREATE TABLE known_devices (
    token_hash TEXT PRIMARY KEY,
    admin_id TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX known_devices_admin ON known_devices(admin_id);
"""),
    # The sha256 of each fixed-size piece of a content's file, for catalogs; filled at
    # upload completion, and for older contents by a backfill the server runs at start.
    Migration("0008_content_pieces", """
CREATE TABLE content_pieces (
    sha256 TEXT PRIMARY KEY,
    piece_size INTEGER NOT NULL CHECK (piece_size > 0),
    hashes BLOB NOT NULL
) WITHOUT ROWID;
"""),
    # USB round trips: the key each terminal enrolled with (it signs what the terminal
    # writes on a stick), when each last answered by stick, and the return files taken in.
    Migration("0009_usb_bundles", """
ALTER TABLE terminals ADD COLUMN public_key TEXT;
ALTER TABLE terminals ADD COLUMN last_usb_contact TEXT;
CREATE TABLE usb_returns (
    digest TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL REFERENCES terminals(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    written_at TEXT NOT NULL,
    imported_at TEXT NOT NULL
) WITHOUT ROWID;
"""),
    # Per film: bytes that left the county server (counted at /blobs) and bytes terminals
    # took in from each other (their heartbeats), for the console's figures.
    Migration("0010_traffic", """
CREATE TABLE content_egress (
    sha256 TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL
) WITHOUT ROWID;
ALTER TABLE terminal_items ADD COLUMN bytes_from_peers INTEGER NOT NULL DEFAULT 0;
"""),
]

"""Timing and size defaults in one place.

Every one of these is a constructor parameter or a setting somewhere, so tests shrink
them without patching anything.
"""

from typing import Final

SOFTWARE_VERSION: Final = "0.1.0"

# discovery
DISCOVERY_TIMEOUT: Final = 3.0  # seconds to wait for an mDNS answer before falling back
RESOLVE_TIMEOUT_MS: Final = 3000

# server conversation
HTTP_CONNECT_TIMEOUT: Final = 10.0
HTTP_READ_TIMEOUT: Final = 60.0  # no byte for this long: the link is gone
HEARTBEAT_INTERVAL: Final = 60.0  # until the server says otherwise
SYNC_INTERVAL: Final = 300.0  # catalog poll when nothing else wakes the syncer
OUTBOX_INTERVAL: Final = 30.0  # outbox look when nothing else wakes it

# retries: jittered exponential backoff
BACKOFF_INITIAL: Final = 2.0
BACKOFF_MAX: Final = 600.0
BACKOFF_FACTOR: Final = 2.0

# downloads
DOWNLOAD_CHUNK: Final = 256 * 1024
PROGRESS_SAVE_SECONDS: Final = 2.0  # bytes-present written to the database this often
PROGRESS_LOG_SECONDS: Final = 10.0

# cache
MIN_FREE_BYTES: Final = 256 * 1024 * 1024  # below this, downloads pause ("disk full")

# scrub: cached files hashed again in the background
SCRUB_INTERVAL: Final = 7 * 86_400.0  # every ready file is hashed again at least this often
SCRUB_EARLY: Final = 0.75  # from this share of the interval on, idle time hashes a file before it is due
SCRUB_RATE: Final = 20_000_000  # bytes/s read by the scrub: leaves the disk to playback and downloads
SCRUB_POLL: Final = 60.0  # the scrub looks for due work this often when nothing wakes it
SESSION_VERIFY_LEAD: Final = 2 * 3600.0  # a scheduled session's items are hashed this long before it
SCRUB_CHUNK: Final = 1 << 20  # bytes per read; the scrub stops between two reads when a session starts

# sessions and outbox
SESSION_SAVE_SECONDS: Final = 5.0  # a power cut loses at most this much of a session
OUTBOX_BATCH: Final = 500  # records per request (the server takes at most 1000)

# player
STALL_SECONDS: Final = 5.0  # playing but media time frozen this long: a stall
MAX_STEP_SECONDS: Final = 2.0  # per unit of rate; a bigger jump between time events is a seek
PLAYER_COMMAND_TIMEOUT: Final = 10.0  # a libvlc child that answers no command this long is hung
ENROLLMENT_POLL_SECONDS: Final = 2.0  # an unenrolled daemon looks for an identity this often
TOKEN_ROTATION_DAYS: Final = 30.0  # a terminal token is swapped for a new one this often

# clock
CLOCK_TOLERANCE_SECONDS: Final = 300.0  # a wall clock this close to the server's is confirmed
HELD_RETRY_INITIAL: Final = 300.0  # a refused record is offered again after this long ...
HELD_RETRY_MAX: Final = 6 * 3600.0  # ... doubling up to this
START_TIMEOUT: Final = 15.0  # a started session answers once it plays, or after this long

"""The village terminal. `daemon.py` composes the parts, arranged by role: `network/`
(the server and the peers), `storage/` (database, catalog, cache), `playback/` (libvlc,
sessions, attendance) and `interface/` (control API, status, command, TV)."""

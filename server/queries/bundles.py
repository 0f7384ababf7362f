"""Choosing the terminals a USB bundle is for, and recording what came back by stick."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy import Connection, bindparam, text

from server.queries.fleet import stored_beat
from shared.protocol import Heartbeat
from shared.timeutil import to_db


@dataclass(frozen=True)
class BundleTerminal:
    """A terminal a bundle may be for; times are RFC 3339 UTC text, None when never."""

    id: str
    village_code: str
    unit_code: str
    enrolled_at: str | None
    revoked_at: str | None
    last_seen: str | None


_TERMINALS = (
    "SELECT t.id, t.village_code, v.unit_code, t.enrolled_at, t.revoked_at, t.last_seen "
    "FROM terminals t JOIN villages v ON v.code = t.village_code"
)
_IN_TOWNSHIP = text(_TERMINALS + " WHERE v.unit_code = :township ORDER BY t.id")
_BY_IDS = text(_TERMINALS + " WHERE t.id IN :ids").bindparams(bindparam("ids", expanding=True))
_OFFLINE = text(_TERMINALS + " WHERE t.last_seen IS NULL OR t.last_seen < :before ORDER BY t.id")


def select_terminals(
    conn: Connection, *, township: str | None, terminal_ids: Sequence[str],
    offline_before: datetime | None,
) -> tuple[list[BundleTerminal], dict[str, str]]:
    """(enrolled terminals chosen, {id: why left out}) for a township, a list of ids, or
    every terminal not heard from since `offline_before` (never heard counts as offline)."""
    rows: list[BundleTerminal] = []
    if township is not None:
        rows += [BundleTerminal(*r) for r in conn.execute(_IN_TOWNSHIP, {"township": township})]
    if terminal_ids:
        found = {r.id: BundleTerminal(*r)
                 for r in conn.execute(_BY_IDS, {"ids": list(terminal_ids)})}
        rows += [found[i] for i in terminal_ids if i in found]
    if offline_before is not None:
        rows += [BundleTerminal(*r)
                 for r in conn.execute(_OFFLINE, {"before": to_db(offline_before)})]
    skipped = {i: "unknown terminal" for i in terminal_ids if i not in {r.id for r in rows}}
    chosen: dict[str, BundleTerminal] = {}
    for r in rows:
        if r.enrolled_at is None:
            skipped[r.id] = "not enrolled: it has no key to check a catalog with"
        elif r.revoked_at is not None:
            skipped[r.id] = "revoked"
        else:
            chosen.setdefault(r.id, r)
    return list(chosen.values()), skipped


_PUBLIC_KEYS = text(
    "SELECT id, public_key FROM terminals WHERE enrolled_at IS NOT NULL AND revoked_at IS NULL"
)
_RETURN_KNOWN = text("SELECT 1 FROM usb_returns WHERE digest = :digest")
_RECORD_RETURN = text(
    "INSERT INTO usb_returns (digest, terminal_id, kind, written_at, imported_at) "
    "VALUES (:digest, :terminal_id, :kind, :written_at, :imported_at) "
    "ON CONFLICT (digest) DO NOTHING"
)
_USB_CONTACT = text(
    "UPDATE terminals SET last_usb_contact = :written_at WHERE id = :terminal_id "
    "AND (last_usb_contact IS NULL OR last_usb_contact < :written_at)"
)
_HEARTBEAT = text("SELECT heartbeat FROM terminals WHERE id = :id")
_SET_HEARTBEAT = text("UPDATE terminals SET heartbeat = :heartbeat WHERE id = :id")
_CLEAR_ITEMS = text("DELETE FROM terminal_items WHERE terminal_id = :id")
# A state listing one item twice keeps the last, as the heartbeat path does.
_PUT_ITEM = text(
    "INSERT INTO terminal_items (terminal_id, sha256, state, bytes_present, bytes_from_peers) "
    "VALUES (:terminal_id, :sha256, :state, :bytes_present, :bytes_from_peers) "
    "ON CONFLICT (terminal_id, sha256) DO UPDATE SET state = excluded.state, "
    "bytes_present = excluded.bytes_present, bytes_from_peers = excluded.bytes_from_peers"
)


def public_keys(conn: Connection) -> dict[str, str | None]:
    """Every enrolled, unrevoked terminal's enrolled public key (None when it sent none)."""
    return {r.id: r.public_key for r in conn.execute(_PUBLIC_KEYS)}


def return_known(conn: Connection, digest: str) -> bool:
    return conn.execute(_RETURN_KNOWN, {"digest": digest}).first() is not None


def record_return(conn: Connection, digest: str, terminal_id: str, kind: str,
                  written_at: datetime, now: datetime) -> None:
    """Note a return file as taken in, and the terminal's last contact by stick."""
    conn.execute(_RECORD_RETURN, {"digest": digest, "terminal_id": terminal_id, "kind": kind,
                                  "written_at": to_db(written_at), "imported_at": to_db(now)})
    conn.execute(_USB_CONTACT, {"written_at": to_db(written_at), "terminal_id": terminal_id})


def record_state(conn: Connection, terminal_id: str, state: Heartbeat) -> bool:
    """Take a state carried by stick as the terminal's latest report, unless a newer one
    (by the terminal's clock) is held; `last_seen` stays: the stick is not a link."""
    held_raw = conn.execute(_HEARTBEAT, {"id": terminal_id}).scalar_one_or_none()
    if held_raw:
        held = msgspec.json.decode(held_raw, type=Heartbeat)
        if held.terminal_clock >= state.terminal_clock:
            return False
    conn.execute(_SET_HEARTBEAT, {"heartbeat": stored_beat(state), "id": terminal_id})
    conn.execute(_CLEAR_ITEMS, {"id": terminal_id})
    if state.cache:
        conn.execute(_PUT_ITEM, [
            {"terminal_id": terminal_id, "sha256": c.sha256, "state": c.state,
             "bytes_present": c.bytes_present, "bytes_from_peers": c.bytes_from_peers}
            for c in state.cache])
    return True

"""Login throttling state: failures per name and address, account locks, known devices.

Names are stored lower-cased by the caller. Times are RFC 3339 UTC text, so they sort.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from shared.timeutil import from_db, to_db


@dataclass(frozen=True)
class AddressFailures:
    failures: int
    last_failure: datetime


@dataclass(frozen=True)
class AccountLock:
    failures: int
    last_failure: datetime
    locks: int
    locked_until: datetime | None


def address_failures(conn: sqlite3.Connection, name: str, address: str) -> AddressFailures | None:
    row = conn.execute(
        "SELECT failures, last_failure FROM login_failures WHERE name = ? AND address = ?",
        (name, address),
    ).fetchone()
    return AddressFailures(int(row[0]), from_db(row[1])) if row else None


def account_lock(conn: sqlite3.Connection, name: str) -> AccountLock | None:
    row = conn.execute(
        "SELECT failures, last_failure, locks, locked_until FROM account_locks WHERE name = ?",
        (name,),
    ).fetchone()
    if row is None:
        return None
    return AccountLock(int(row[0]), from_db(row[1]), int(row[2]),
                       from_db(row[3]) if row[3] else None)


def put_address_failures(conn: sqlite3.Connection, name: str, address: str,
                         state: AddressFailures) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO login_failures (name, address, failures, last_failure) "
        "VALUES (?, ?, ?, ?)", (name, address, state.failures, to_db(state.last_failure)),
    )


def put_account_lock(conn: sqlite3.Connection, name: str, state: AccountLock) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO account_locks (name, failures, last_failure, locks, locked_until) "
        "VALUES (?, ?, ?, ?, ?)",
        (name, state.failures, to_db(state.last_failure), state.locks,
         to_db(state.locked_until) if state.locked_until else None),
    )


def clear_address(conn: sqlite3.Connection, name: str, address: str) -> None:
    conn.execute("DELETE FROM login_failures WHERE name = ? AND address = ?", (name, address))


def forgive_account(conn: sqlite3.Connection, name: str, now: datetime) -> None:
    """Reset the account's failure count, unless a lock holds."""
    conn.execute("UPDATE account_locks SET failures = 0 WHERE name = ? "
                 "AND (locked_until IS NULL OR locked_until <= ?)", (name, to_db(now)))


def prune(conn: sqlite3.Connection, before: datetime) -> None:
    """Forget failures last seen before `before` and locks that ended before it."""
    cut = to_db(before)
    conn.execute("DELETE FROM login_failures WHERE last_failure < ?", (cut,))
    conn.execute("DELETE FROM account_locks WHERE last_failure < ? "
                 "AND (locked_until IS NULL OR locked_until < ?)", (cut, cut))


def add_device(conn: sqlite3.Connection, token_hash: str, admin_id: str, now: datetime,
               expires: datetime) -> None:
    conn.execute("DELETE FROM known_devices WHERE expires_at < ?", (to_db(now),))
    conn.execute(
        "INSERT OR REPLACE INTO known_devices (token_hash, admin_id, created_at, expires_at) "
        "VALUES (?, ?, ?, ?)", (token_hash, admin_id, to_db(now), to_db(expires)),
    )


def device_username(conn: sqlite3.Connection, token_hash: str, now: datetime) -> str | None:
    """The account a known device logged in to, if the device is still known."""
    row = conn.execute(
        "SELECT a.username FROM known_devices d JOIN admins a ON a.id = d.admin_id "
        "WHERE d.token_hash = ? AND d.expires_at > ?", (token_hash, to_db(now)),
    ).fetchone()
    return str(row[0]) if row else None

"""Login throttling state: failures per name and address, account locks, known devices.

Names are stored lower-cased by the caller. Times are RFC 3339 UTC text, so they sort.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

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


_ADDRESS = text(
    "SELECT failures, last_failure FROM login_failures WHERE name = :name AND address = :address"
)
_ACCOUNT = text(
    "SELECT failures, last_failure, locks, locked_until FROM account_locks WHERE name = :name"
)
_PUT_ADDRESS = text(
    "INSERT INTO login_failures (name, address, failures, last_failure) "
    "VALUES (:name, :address, :failures, :last_failure) "
    "ON CONFLICT (name, address) DO UPDATE SET failures = excluded.failures, "
    "last_failure = excluded.last_failure"
)
_PUT_ACCOUNT = text(
    "INSERT INTO account_locks (name, failures, last_failure, locks, locked_until) "
    "VALUES (:name, :failures, :last_failure, :locks, :locked_until) "
    "ON CONFLICT (name) DO UPDATE SET failures = excluded.failures, "
    "last_failure = excluded.last_failure, locks = excluded.locks, "
    "locked_until = excluded.locked_until"
)
_CLEAR_ADDRESS = text("DELETE FROM login_failures WHERE name = :name AND address = :address")
_FORGIVE = text(
    "UPDATE account_locks SET failures = 0 WHERE name = :name "
    "AND (locked_until IS NULL OR locked_until <= :now)"
)
_PRUNE_ADDRESSES = text("DELETE FROM login_failures WHERE last_failure < :cut")
_PRUNE_ACCOUNTS = text(
    "DELETE FROM account_locks WHERE last_failure < :cut "
    "AND (locked_until IS NULL OR locked_until < :cut)"
)
_FORGET_DEVICES = text("DELETE FROM known_devices WHERE expires_at < :now")
_PUT_DEVICE = text(
    "INSERT INTO known_devices (token_hash, admin_id, created_at, expires_at) "
    "VALUES (:token_hash, :admin_id, :now, :expires) "
    "ON CONFLICT (token_hash) DO UPDATE SET admin_id = excluded.admin_id, "
    "created_at = excluded.created_at, expires_at = excluded.expires_at"
)
_DEVICE_USER = text(
    "SELECT a.username FROM known_devices d JOIN admins a ON a.id = d.admin_id "
    "WHERE d.token_hash = :token_hash AND d.expires_at > :now"
)


def address_failures(conn: Connection, name: str, address: str) -> AddressFailures | None:
    row = conn.execute(_ADDRESS, {"name": name, "address": address}).first()
    return AddressFailures(int(row.failures), from_db(row.last_failure)) if row else None


def account_lock(conn: Connection, name: str) -> AccountLock | None:
    row = conn.execute(_ACCOUNT, {"name": name}).first()
    if row is None:
        return None
    return AccountLock(int(row.failures), from_db(row.last_failure), int(row.locks),
                       from_db(row.locked_until) if row.locked_until else None)


def put_address_failures(conn: Connection, name: str, address: str,
                         state: AddressFailures) -> None:
    conn.execute(_PUT_ADDRESS, {"name": name, "address": address, "failures": state.failures,
                                "last_failure": to_db(state.last_failure)})


def put_account_lock(conn: Connection, name: str, state: AccountLock) -> None:
    conn.execute(_PUT_ACCOUNT, {
        "name": name, "failures": state.failures, "last_failure": to_db(state.last_failure),
        "locks": state.locks,
        "locked_until": to_db(state.locked_until) if state.locked_until else None,
    })


def clear_address(conn: Connection, name: str, address: str) -> None:
    conn.execute(_CLEAR_ADDRESS, {"name": name, "address": address})


def forgive_account(conn: Connection, name: str, now: datetime) -> None:
    """Reset the account's failure count, unless a lock holds."""
    conn.execute(_FORGIVE, {"name": name, "now": to_db(now)})


def prune(conn: Connection, before: datetime) -> None:
    """Forget failures last seen before `before` and locks that ended before it."""
    cut = to_db(before)
    conn.execute(_PRUNE_ADDRESSES, {"cut": cut})
    conn.execute(_PRUNE_ACCOUNTS, {"cut": cut})


def add_device(conn: Connection, token_hash: str, admin_id: str, now: datetime,
               expires: datetime) -> None:
    conn.execute(_FORGET_DEVICES, {"now": to_db(now)})
    conn.execute(_PUT_DEVICE, {"token_hash": token_hash, "admin_id": admin_id, "now": to_db(now),
                               "expires": to_db(expires)})


def device_username(conn: Connection, token_hash: str, now: datetime) -> str | None:
    """The account a known device logged in to, if the device is still known."""
    found = conn.execute(_DEVICE_USER, {"token_hash": token_hash, "now": to_db(now)}).scalar()
    return None if found is None else str(found)

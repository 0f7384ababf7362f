"""Login throttling, kept in the database (it survives a restart, and several server
processes share it).

Two limits, both answered with 429 and `Retry-After`:

* per name and address: after `max_failures` wrong passwords from one address (each
  within `cooldown` of the one before), that address may not try that name again until
  `cooldown` has passed since the last failure. The enrollment endpoint uses this alone.
* per account, across addresses: after `account_max_failures` wrong passwords for one
  account from anywhere (each within `account_lock_max` of the one before), the account
  is locked for `account_lock`; a lock that follows within `account_lock_max` of the
  previous one lasts twice as long, up to `account_lock_max`. While it holds, no
  password is even checked, unless the request comes from a known device.

A known device is a browser that logged in to the account before: the login sets an
HttpOnly cookie whose hash is stored (`known_devices`, valid `known_device_days`). The
real admin at the county office thus keeps logging in while an attack from many
addresses holds the account locked for everybody else. Changing the password forgets
the account's devices. Unknown names are locked like real ones, so a lock says nothing
about whether an account exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from server.db import Database
from server.queries import throttle as q
from server.queries.throttle import AccountLock, AddressFailures
from shared.timeutil import utcnow


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int
    cooldown: float  # seconds
    account_max_failures: int
    account_lock: float  # seconds, the first lock
    account_lock_max: float  # seconds


@dataclass(frozen=True)
class Refusal:
    seconds: int  # for Retry-After, at least 1
    account_locked: bool  # the per-account lock, rather than this address's failures


class LoginThrottle:
    def __init__(self, db: Database, policy: ThrottlePolicy,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self.policy = policy
        self._clock = clock

    async def refusal(self, name: str, address: str, *, per_account: bool = True,
                      known_device: bool = False) -> Refusal | None:
        """Why this attempt may not be made now, or None if it may."""
        key, now, p = name.lower(), self._clock(), self.policy
        at, lock = await self._db.read(
            lambda c: (q.address_failures(c, key, address),
                       q.account_lock(c, key) if per_account else None))
        if at is not None and at.failures >= p.max_failures:
            until = at.last_failure + timedelta(seconds=p.cooldown)
            if until > now:
                return Refusal(_seconds(until - now), account_locked=False)
        if lock is not None and lock.locked_until is not None and lock.locked_until > now \
                and not known_device:
            return Refusal(_seconds(lock.locked_until - now), account_locked=True)
        return None

    async def failed(self, name: str, address: str, *, per_account: bool = True) -> None:
        key, now, p = name.lower(), self._clock(), self.policy

        def record(c: Connection) -> None:
            at = q.address_failures(c, key, address)
            fresh = at is None or now - at.last_failure > timedelta(seconds=p.cooldown)
            q.put_address_failures(c, key, address, AddressFailures(
                failures=1 if fresh or at is None else at.failures + 1, last_failure=now))
            if per_account:
                q.put_account_lock(c, key, self._next_lock(q.account_lock(c, key), now))
            q.prune(c, now - timedelta(seconds=max(p.cooldown, p.account_lock_max) * 2))

        await self._db.write(record)

    def _next_lock(self, lock: AccountLock | None, now: datetime) -> AccountLock:
        p, window = self.policy, timedelta(seconds=self.policy.account_lock_max)
        if lock is None:
            lock = AccountLock(failures=0, last_failure=now, locks=0, locked_until=None)
        failures = lock.failures + 1 if now - lock.last_failure <= window else 1
        locks = lock.locks
        if lock.locked_until is not None and now - lock.locked_until > window:
            locks = 0  # quiet long enough: the next lock starts short again
        if failures < p.account_max_failures:
            return AccountLock(failures, now, locks, lock.locked_until)
        length = min(p.account_lock * 2 ** locks, p.account_lock_max)
        until = max(now + timedelta(seconds=length), lock.locked_until or now)
        return AccountLock(0, now, locks + 1, until)

    async def succeeded(self, name: str, address: str) -> None:
        """A right password: this address starts afresh, and so does the account's count
        of failures unless it is locked (a lock stays until it ends)."""
        key, now = name.lower(), self._clock()

        def record(c: Connection) -> None:
            q.clear_address(c, key, address)
            q.forgive_account(c, key, now)

        await self._db.write(record)


def _seconds(left: timedelta) -> int:
    return max(1, int(left.total_seconds() + 0.999))

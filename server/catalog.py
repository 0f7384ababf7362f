"""Building and signing a terminal's catalog.

The ETag names what the catalog says (items and sessions) plus the signing period, so a
terminal gets 304 while nothing changed for it, and a freshly signed catalog at least
every half expiry period, long before the one it holds expires.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import Connection

from server.config import ServerConfig
from server.db import Database
from server.queries.catalog import catalog_parts
from server.queries.county import bumps_here, catalog_version
from server.signer import Signer
from shared.protocol import Catalog

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class CatalogDraft:
    """What the database says; the signing happens after, off the database thread."""

    terminal_id: str
    village_code: str
    version: int
    etag: str
    body: tuple[object, ...]


def draft(
    conn: Connection, config: ServerConfig, terminal_id: str, village_code: str,
    unit_code: str, now: datetime,
) -> CatalogDraft:
    since = now - timedelta(hours=12)  # a session that began this morning is still wanted
    until = now + timedelta(days=config.session_horizon_days)
    items, sessions = catalog_parts(conn, terminal_id, village_code, unit_code, since, until)
    period = signing_period(config, now)
    digest = hashlib.sha256(_encoder.encode((terminal_id, village_code, items, sessions, period)))
    return CatalogDraft(
        terminal_id=terminal_id, village_code=village_code, version=catalog_version(conn),
        etag=f'"{digest.hexdigest()[:40]}"', body=(items, sessions),
    )


def signing_period(config: ServerConfig, now: datetime) -> int:
    """Which half catalog lifetime `now` falls in: a catalog is signed afresh in each."""
    return int(now.timestamp() // (config.catalog_ttl_hours * 1800))


class CatalogMemo:
    """What each terminal was last told, so that the commonest poll of all, the one whose
    catalog did not change, is answered 304 without the database.

    A terminal's ETag is remembered with the catalog version and signing period it was
    made in, for at most `keep` seconds (sessions move into the horizon and out of the
    morning window with time alone, without a new version). The version itself is read
    from the database at most once per `recheck` seconds, and at once after this process
    committed a change to it; another server process's change is seen within `recheck`.
    About 150 bytes per terminal."""

    def __init__(self, recheck: float = 1.0, keep: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.recheck, self._keep, self._clock = recheck, keep, clock
        self._version: tuple[int, int, float] | None = None  # version, bumps seen, read at
        self._reading: asyncio.Future[int] | None = None
        self._etags: dict[str, tuple[int, int, str, float]] = {}

    async def version(self, db: Database) -> int:
        """The catalog version, as fresh as the rules above make it."""
        bumps, now = bumps_here(), self._clock()
        v = self._version
        if v is not None and v[1] == bumps and now - v[2] < self.recheck:
            return v[0]
        reading = self._reading
        if reading is None:  # one read for every poll that arrives meanwhile
            reading = self._reading = asyncio.ensure_future(db.read(catalog_version))

            def done(f: asyncio.Future[int]) -> None:
                self._reading = None
                if not f.cancelled() and f.exception() is None:
                    self._version = (f.result(), bumps, now)

            reading.add_done_callback(done)
        return await asyncio.shield(reading)

    def etag(self, terminal_id: str, version: int, period: int) -> str | None:
        """The ETag `terminal_id` was last given, if made for this version and period."""
        found = self._etags.get(terminal_id)
        if found is None or found[:2] != (version, period) or self._clock() - found[3] > self._keep:
            return None
        return found[2]

    def remember(self, d: CatalogDraft, period: int) -> None:
        if len(self._etags) >= 100_000:  # a province is about 20,000 terminals
            self._etags.clear()
        self._etags[d.terminal_id] = (d.version, period, d.etag, self._clock())


def sign(d: CatalogDraft, signer: Signer, config: ServerConfig, now: datetime) -> bytes:
    items, sessions = d.body
    catalog = Catalog(
        terminal_id=d.terminal_id, village_code=d.village_code, version=d.version,
        generated_at=now, expires_at=now + timedelta(hours=config.catalog_ttl_hours),
        items=items, sessions=sessions,  # type: ignore[arg-type]
    )
    raw = _encoder.encode(catalog)
    return (
        b'{"catalog":' + raw + b',"signature":' + _encoder.encode(signer.sign(raw))
        + b',"key_fingerprint":' + _encoder.encode(signer.fingerprint) + b"}"
    )

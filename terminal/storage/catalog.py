"""The signed catalog: checked before anything in it is believed.

The signature is verified over the exact bytes the server signed, with the pinned key,
before they are decoded. A catalog for another terminal, or older than the one held
(a rollback), is rejected and the held one stays in force. An expired catalog is kept
for playing what is cached, but the terminal reports "stale" and adds nothing new.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime

import msgspec

from shared.protocol import Catalog, CatalogItem, SignedCatalog
from shared.signing import verify
from shared.sqlite import Database
from shared.timeutil import utcnow
from terminal.errors import CatalogRejected
from terminal.network.trust import Trust
from terminal.storage import db as q

log = logging.getLogger(__name__)

RAW = "catalog_raw"
ETAG = "catalog_etag"


def check(envelope: SignedCatalog, trust: Trust, terminal_id: str, held: Catalog | None) -> Catalog:
    """The catalog inside `envelope` if it may replace `held`; CatalogRejected otherwise."""
    if trust.key is None or trust.fingerprint is None:
        raise CatalogRejected("no server key is pinned yet")
    if envelope.key_fingerprint != trust.fingerprint:
        raise CatalogRejected(
            f"catalog signed by key {envelope.key_fingerprint}, not the pinned {trust.fingerprint}"
        )
    raw = bytes(envelope.catalog)
    if not verify(trust.key, raw, envelope.signature):
        raise CatalogRejected("the catalog signature does not verify")
    try:
        catalog = msgspec.json.decode(raw, type=Catalog)
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise CatalogRejected(f"the signed catalog does not decode: {e}") from e
    if catalog.terminal_id != terminal_id:
        raise CatalogRejected(f"the catalog is for {catalog.terminal_id}, not {terminal_id}")
    if held is not None and (catalog.version, catalog.generated_at) < (held.version, held.generated_at):
        raise CatalogRejected(
            f"the catalog (version {catalog.version}) is older than the one held "
            f"(version {held.version}): refused as a rollback"
        )
    return catalog


class CatalogKeeper:
    """Holds the catalog in force, persisted as its signed bytes."""

    def __init__(self, database: Database, trust: Trust, terminal_id: str) -> None:
        self._db = database
        self._trust = trust
        self._terminal_id = terminal_id
        self.catalog: Catalog | None = None
        self.etag: str | None = None

    async def async_load(self) -> None:
        raw, etag = await self._db.read(lambda c: (q.get_kv(c, RAW), q.get_kv(c, ETAG)))
        if raw:
            # it was verified before it was stored; the database is ours
            self.catalog = msgspec.json.decode(raw.encode(), type=Catalog)
            self.etag = etag

    def item(self, sha256: str) -> CatalogItem | None:
        """The catalog in force's entry for `sha256` (its piece hashes), if it names it."""
        if self.catalog is None:
            return None
        return next((i for i in self.catalog.items if i.sha256 == sha256), None)

    def expired(self, now: datetime | None = None) -> bool:
        return self.catalog is not None and (now or utcnow()) >= self.catalog.expires_at

    async def async_apply(self, envelope: SignedCatalog, etag: str | None) -> Catalog:
        catalog = check(envelope, self._trust, self._terminal_id, self.catalog)
        raw = bytes(envelope.catalog).decode()

        def store(c: sqlite3.Connection) -> None:
            q.set_kv(c, RAW, raw)
            if etag:
                q.set_kv(c, ETAG, etag)
            q.apply_catalog_items(c, catalog.items)

        await self._db.write(store)
        if self.catalog is None or self.catalog.version != catalog.version:
            log.info("catalog version %d in force: %d items, %d sessions",
                     catalog.version, len(catalog.items), len(catalog.sessions))
        self.catalog, self.etag = catalog, etag
        return catalog

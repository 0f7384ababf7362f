"""Building and signing a terminal's catalog.

The ETag names what the catalog says (items and sessions) plus the signing period, so a
terminal gets 304 while nothing changed for it, and a freshly signed catalog at least
every half expiry period, long before the one it holds expires.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import Connection

from server.config import ServerConfig
from server.queries.catalog import catalog_parts
from server.queries.county import catalog_version
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
    half_ttl = config.catalog_ttl_hours * 1800
    period = int(now.timestamp() // half_ttl)
    digest = hashlib.sha256(_encoder.encode((terminal_id, village_code, items, sessions, period)))
    return CatalogDraft(
        terminal_id=terminal_id, village_code=village_code, version=catalog_version(conn),
        etag=f'"{digest.hexdigest()[:40]}"', body=(items, sessions),
    )


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

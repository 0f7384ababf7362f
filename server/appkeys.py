"""Typed keys for everything the application holds, declared in one place."""

from __future__ import annotations

import asyncio

from aiohttp import web

from server.auth.throttle import LoginThrottle
from server.auth.token_cache import TokenCache
from server.catalog import CatalogMemo
from server.config import ServerConfig
from server.db import Database
from server.discovery import Discovery
from server.diskspace import DiskWatch
from server.heartbeats import HeartbeatWriter
from server.ingest import Ingestor
from server.media.store import BlobStore
from server.peer_leases import Leases
from server.signer import Signer
from server.traffic import EgressCounter
from server.uploads import Uploads

CONFIG = web.AppKey("config", ServerConfig)
DB = web.AppKey("db", Database)
STORE = web.AppKey("store", BlobStore)  # MediaStore (disk) or S3Store
SIGNER = web.AppKey("signer", Signer)
INGESTOR = web.AppKey("ingestor", Ingestor)
SERVER_ID = web.AppKey("server_id", str)
UPLOADS = web.AppKey("uploads", Uploads)
DISCOVERY = web.AppKey("discovery", Discovery)
THROTTLE = web.AppKey("throttle", LoginThrottle)
TLS_PIN = web.AppKey("tls_pin", str)  # "" when terminals have no certificate to pin
TOKENS = web.AppKey("tokens", TokenCache)
DISK = web.AppKey("disk", DiskWatch)
ATTENDANCE_SLOTS = web.AppKey("attendance_slots", asyncio.Semaphore)  # batches in memory at once
EGRESS = web.AppKey("egress", EgressCounter)  # bytes of each content sent from /blobs
LEASES = web.AppKey("leases", Leases)  # who on each LAN fetches an item from the server
COUNTY_ROUTES = web.AppKey("county_routes", frozenset)  # routes a county's account may use
CATALOGS = web.AppKey("catalogs", CatalogMemo)  # what each terminal's catalog was last
HEARTBEATS = web.AppKey("heartbeats", HeartbeatWriter)  # heartbeats written together
BACKFILL = web.AppKey("backfill", asyncio.Task[None])  # piece hashes for earlier contents

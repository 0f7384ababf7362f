"""Typed keys for everything the application holds, declared in one place."""

from __future__ import annotations

from aiohttp import web

from server.auth.throttle import LoginThrottle
from server.auth.token_cache import TokenCache
from server.config import ServerConfig
from server.discovery import Discovery
from server.diskspace import DiskWatch
from server.ingest import Ingestor
from server.media.store import MediaStore
from server.signer import Signer
from server.uploads import Uploads
from shared.sqlite import Database

CONFIG = web.AppKey("config", ServerConfig)
DB = web.AppKey("db", Database)
STORE = web.AppKey("store", MediaStore)
SIGNER = web.AppKey("signer", Signer)
INGESTOR = web.AppKey("ingestor", Ingestor)
SERVER_ID = web.AppKey("server_id", str)
UPLOADS = web.AppKey("uploads", Uploads)
DISCOVERY = web.AppKey("discovery", Discovery)
THROTTLE = web.AppKey("throttle", LoginThrottle)
TLS_PIN = web.AppKey("tls_pin", str)  # "" when terminals have no certificate to pin
TOKENS = web.AppKey("tokens", TokenCache)
DISK = web.AppKey("disk", DiskWatch)

"""`create_app(config)`: the whole server as one aiohttp application.

Each resource with a lifetime (database, signing key, media store, upload manager,
the clean-up task) is set up and torn down in `cleanup_ctx`, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server import openapi
from server.appkeys import (
    ATTENDANCE_SLOTS,
    BACKFILL,
    CATALOGS,
    CONFIG,
    DB,
    DISK,
    EGRESS,
    HEARTBEATS,
    INGESTOR,
    LEASES,
    SERVER_ID,
    SIGNER,
    STORE,
    THROTTLE,
    TLS_PIN,
    TOKENS,
    UPLOADS,
)
from server.auth.throttle import LoginThrottle, ThrottlePolicy
from server.auth.token_cache import TokenCache
from server.catalog import CatalogMemo
from server.config import ServerConfig
from server.db import Database
from server.diskspace import DiskWatch
from server.heartbeats import HeartbeatWriter
from server.ingest import Ingestor, backfill_pieces
from server.media.store import BlobStore, MediaStore, StoreUnavailable
from server.middlewares import middlewares
from server.migrations import MIGRATIONS
from server.peer_leases import Leases
from server.queries import meta, rollups, trained_months
from server.routes import add_routes
from server.signer import Signer
from server.tls import tls_pin
from server.traffic import EgressCounter
from server.uploads import Uploads

log = logging.getLogger(__name__)

JSON_BODY_LIMIT = 4 << 20
EXPIRY_SWEEP_SECONDS = 3600.0


async def _database(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    async with Database(config.database, MIGRATIONS) as db:
        app[DB] = db
        app[SERVER_ID] = await db.write(meta.server_id)
        basis = config.rollup_basis
        rebuilt = await db.write(lambda c: rollups.ensure(c, basis))
        if rebuilt is not None:
            log.info("report roll-ups rebuilt from %d attendance records (%s)", rebuilt, basis.key)
        app[LEASES] = Leases(db, ttl=max(10.0, config.heartbeat_interval * config.online_missed_heartbeats))
        app[HEARTBEATS] = HeartbeatWriter(db, app[LEASES])
        app[CATALOGS] = CatalogMemo()
        remembered = await app[TOKENS].preload(db)  # a restarted process knows the fleet
        log.debug("%d terminal tokens remembered", remembered)
        app[THROTTLE] = LoginThrottle(db, ThrottlePolicy(
            max_failures=config.login_max_failures, cooldown=config.login_cooldown_seconds,
            account_max_failures=config.login_account_max_failures,
            account_lock=config.login_account_lock_seconds,
            account_lock_max=config.login_account_lock_max_seconds,
        ))
        yield


async def _media(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]

    def prepare() -> tuple[Signer, BlobStore]:
        store: BlobStore
        if config.media_store == "s3":
            # boto3 is imported here, not at the top: a county on local disk does not
            # carry it (10 MB of the idle server's memory, a tenth of its start)
            from server.media.objects import S3Store

            store = S3Store.from_config(config)
        else:
            store = MediaStore(config.media_dir)
        store.open()
        config.uploads_dir.mkdir(parents=True, exist_ok=True)
        return Signer.load_or_create(config.key_path), store

    signer, store = await asyncio.to_thread(prepare)
    app[SIGNER], app[STORE] = signer, store
    pin = await asyncio.to_thread(tls_pin, config)
    app[TLS_PIN] = pin or ""
    app[INGESTOR] = Ingestor(app[DB], store, config.uploads_dir, config.ffprobe_timeout,
                             config.piece_size)
    app[UPLOADS] = Uploads(app[DB], config, app[INGESTOR])
    yield


async def _expiry(app: web.Application) -> AsyncIterator[None]:
    async def sweep() -> None:
        while True:
            try:
                removed = await app[UPLOADS].remove_expired()
                if removed:
                    log.info("removed %d expired upload(s)", removed)
            except Exception:
                log.exception("upload expiry sweep failed")
            await asyncio.sleep(EXPIRY_SWEEP_SECONDS)

    async def store_pending() -> None:
        # finished uploads the store did not take (a bucket down) are stored once it answers
        while True:
            await asyncio.sleep(app[CONFIG].store_retry_seconds)
            try:
                stored = await app[UPLOADS].store_pending()
                if stored:
                    log.info("stored %d finished upload(s) that had waited for the store", stored)
            except StoreUnavailable as e:
                log.debug("the store still does not answer: %s", e)
            except Exception:
                log.exception("storing finished uploads failed")

    async def fold_months() -> None:
        # the trained months marked by ingests, into the province's county figures
        while True:
            await asyncio.sleep(trained_months.FOLD_SECONDS)
            try:
                await trained_months.fold_all(app[DB])
            except Exception:
                log.exception("folding trained months failed; it is tried again")

    tasks = [asyncio.create_task(sweep()), asyncio.create_task(store_pending()),
             asyncio.create_task(fold_months())]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _egress(app: web.Application) -> AsyncIterator[None]:
    """Bytes sent per content, counted in memory and added to the database now and then."""
    counter = EgressCounter(app[DB])
    app[EGRESS] = counter
    counter.start()
    yield
    await counter.async_close()


async def _backfill(app: web.Application) -> AsyncIterator[None]:
    """Piece hashes for contents stored before they existed, in the background."""
    async def run() -> None:
        try:
            await backfill_pieces(app[DB], app[STORE], app[CONFIG].piece_size,
                                  app[CONFIG].uploads_dir)
        except Exception:
            log.exception("piece hash backfill failed; it runs again at the next start")

    task = asyncio.create_task(run())
    app[BACKFILL] = task
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(config: ServerConfig) -> web.Application:
    disk = DiskWatch(config.data_dir, config.write_reserve_bytes)
    app = web.Application(
        middlewares=middlewares(disk),
        client_max_size=JSON_BODY_LIMIT,
    )
    app[CONFIG] = config
    app[DISK] = disk
    app[TOKENS] = TokenCache()
    app[ATTENDANCE_SLOTS] = asyncio.Semaphore(config.attendance_concurrency)
    app.cleanup_ctx.extend([_database, _media, _expiry, _backfill, _egress])
    add_routes(app, openapi.handler(openapi.build(config.max_upload_bytes)))
    return app

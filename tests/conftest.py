"""Fixtures that start real things: the server on port 0, SQLite in tmp_path, clips
made by ffmpeg. Every async test also runs with a guard that fails it if anything
blocks the event loop for longer than BLOCKING_LIMIT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import Connection

from server.config import ServerConfig
from server.runner import RunningServer
from tests.pg_cluster import PgCluster

REPO = Path(__file__).resolve().parent.parent
COUNTY = REPO / "demo" / "county"
BLOCKING_LIMIT = 0.5  # seconds; generous for a loaded 2-core CI machine


def make_clip(path: Path, seconds: float = 5, size: str = "160x120", tone: int = 440,
              source: str = "testsrc") -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", f"{source}=size={size}:rate=25",
         "-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=22050",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "32k", "-movflags", "+faststart", str(path)],
        check=True,
    )
    return path


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5 s H.264/AAC MP4 made once per test run."""
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


@pytest.fixture(scope="session")
def clip2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, different clip."""
    return make_clip(tmp_path_factory.mktemp("clips2") / "clip2.mp4", seconds=4, tone=660,
                     source="testsrc2")


class _BlockingWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.slow: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Executing") and "took" in msg:
            self.slow.append(msg)


@pytest.fixture(autouse=True)
def no_blocking(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test whose code blocks the event loop (asyncio debug mode reports it)."""
    if request.node.get_closest_marker("allow_blocking"):
        yield
        return
    # A full garbage collection of everything earlier tests left (hundreds of MB late in
    # the run) takes most of a second; done here, between tests, and the survivors
    # frozen, it cannot land inside a callback and be taken for blocking code.
    gc.collect()
    gc.freeze()
    watch = _BlockingWatch()
    logger = logging.getLogger("asyncio")
    logger.addHandler(watch)
    try:
        yield
    finally:
        logger.removeHandler(watch)
    assert not watch.slow, f"the event loop was blocked: {watch.slow}"


@pytest.fixture(autouse=True)
async def _loop_debug() -> None:
    """Debug mode makes asyncio log every callback that holds the loop too long."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = BLOCKING_LIMIT


# The engine every server in the tests runs on: SQLite (the default) or, with
# YUANJIAO_TEST_DATABASE=postgresql, a PostgreSQL cluster started for the run.
TEST_DATABASE = os.environ.get("YUANJIAO_TEST_DATABASE", "sqlite")
if TEST_DATABASE not in ("sqlite", "postgresql"):
    raise SystemExit("YUANJIAO_TEST_DATABASE must be sqlite or postgresql")
_cluster: PgCluster | None = None
_schemas: dict[Path, str] = {}


@pytest.fixture(scope="session", autouse=True)
def _postgresql() -> Iterator[None]:
    global _cluster
    if TEST_DATABASE != "postgresql":
        yield
        return
    with PgCluster() as cluster:
        cluster.make_schemas(600)  # one per server a test starts, made before any loop runs
        _cluster = cluster
        try:
            yield
        finally:
            _cluster = None


def database_url(data_dir: Path) -> str:
    """The database URL for a server on `data_dir`: "" (its own SQLite file) or, on
    PostgreSQL, a schema of its own, the same one each time the same data_dir starts."""
    if _cluster is None:
        return ""
    if data_dir not in _schemas:
        _schemas[data_dir] = _cluster.fresh_url()
    return _schemas[data_dir]


def postgresql_cluster() -> PgCluster | None:
    """The run's PostgreSQL cluster, or None when the tests run on SQLite."""
    return _cluster


def server_config(tmp_path: Path, **changes: object) -> ServerConfig:
    data_dir = Path(str(changes.get("data_dir", tmp_path / "server")))
    base = ServerConfig(data_dir=tmp_path / "server", port=0, zeroconf=False, min_free_bytes=0,
                        counted_min_seconds=1.0, database_url=database_url(data_dir))
    return base.replace(**changes)


async def terminal_token(admin: aiohttp.ClientSession, terminal_id: str) -> str:
    """Enroll a terminal point through the API, as its box would; return its token."""
    async with admin.post(f"/api/v1/admin/terminals/{terminal_id}/enrollment", json={}) as r:
        assert r.status == 201, await r.text()
        code = (await r.json())["code"]
    async with admin.post("/api/v1/enroll", json={"code": code}) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["token"])


def terminal_session(running: RunningServer, token: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(running.url, headers={"Authorization": f"Bearer {token}"})


@dataclass
class Server:
    running: RunningServer
    http: aiohttp.ClientSession
    terminals: dict[str, aiohttp.ClientSession] = field(default_factory=dict)

    async def as_terminal(self, terminal_id: str) -> aiohttp.ClientSession:
        """A session that speaks as this (freshly enrolled) terminal."""
        if terminal_id not in self.terminals:
            token = await terminal_token(self.http, terminal_id)
            self.terminals[terminal_id] = terminal_session(self.running, token)
        return self.terminals[terminal_id]

    async def aclose(self) -> None:
        for session in self.terminals.values():
            await session.close()

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def config(self) -> ServerConfig:
        return self.running.config


async def seed_county(running: RunningServer) -> None:
    from server.appkeys import DB
    from server.county_import import load_county

    await running.app[DB].write(lambda c: load_county(c, COUNTY))


ADMIN_PASSWORD = "county-admin-password"
_hash_cache: dict[str, str] = {}


async def add_account(running: RunningServer, username: str = "admin", role: str = "admin",
                      password: str = ADMIN_PASSWORD, county: str | None = None) -> str:
    """Create a console account (a county's when `county` is a code) and return an API
    token for it (argon2 hashes are cached across tests: hashing is deliberately slow)."""
    from server.appkeys import DB
    from server.auth import secrets
    from server.auth.policy import ADMIN_TOKEN_PREFIX
    from server.queries import auth as q
    from shared.timeutil import utcnow

    if password not in _hash_cache:
        _hash_cache[password] = await secrets.hash_password(password)
    hashed, now = _hash_cache[password], utcnow()
    token = secrets.new_token(ADMIN_TOKEN_PREFIX)

    def add(c: Connection) -> None:
        admin_id = q.create_admin(c, username, hashed, role, now, county)
        if admin_id is None:  # the account survives a restart on the same data
            row = q.admin_by_name(c, username)
            assert row is not None
            admin_id = row.id
        q.create_token(c, admin_id, "tests", secrets.digest(token), now)

    await running.app[DB].write(add)
    return token


def admin_session(running: RunningServer, token: str) -> aiohttp.ClientSession:
    """An admin's client; over https it pins the server's certificate, as terminals do."""
    from server.tls import tls_pin

    pin = tls_pin(running.config)
    connector = aiohttp.TCPConnector(ssl=aiohttp.Fingerprint(bytes.fromhex(pin))) if pin else None
    return aiohttp.ClientSession(running.url, headers={"Authorization": f"Bearer {token}"},
                                 connector=connector)


@contextlib.asynccontextmanager
async def serve(config: ServerConfig, *, seed: bool = False
                ) -> AsyncIterator[tuple[RunningServer, aiohttp.ClientSession]]:
    """Start the server on `config` with an admin account; yield it and an admin session."""
    async with RunningServer(config) as running:
        if seed:
            await seed_county(running)
        token = await add_account(running)
        async with admin_session(running, token) as http:
            yield running, http


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """The real server on a free port, with the sample county (units, villages, terminals)
    and an admin account; `server.http` sends that admin's API token."""
    async with RunningServer(server_config(tmp_path)) as running:
        await seed_county(running)
        token = await add_account(running)
        async with admin_session(running, token) as http:
            server = Server(running, http)
            try:
                yield server
            finally:
                await server.aclose()


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None

"""Media on S3-compatible storage (`media_store = "s3"`), against moto's real S3 server.

A clip uploaded by tus lands in the bucket under its sha256 (multipart above the
threshold) and leaves no local copy; `/blobs/<sha256>` checks the terminal's token,
then answers 307 to a signed bucket URL (or the CDN base URL) that expires; the
terminal's downloader follows it with its Range, resumes, verifies every byte, and
never sends its token to the bucket or CDN host; a terminal pinning the county
server's certificate reaches an HTTPS CDN through its second session (CA-checked), not
the pinned one. With the bucket unreachable, a finished upload is answered 503
`store_unavailable` (Chinese first, Retry-After), HEAD does not claim it done, its bytes
are kept, and it reaches the bucket once the bucket answers again, without a server
restart. Readers of stored files (USB bundles, the piece backfill) get the bytes through
`local_file`; multipart uploads are used above the threshold.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from aiohttp import web
from sqlalchemy import text

from server.appkeys import STORE
from server.config import ServerConfig
from server.media.objects import S3Store
from server.media.store import local_file
from server.runner import RunningServer
from shared.pieces import piece_hashes
from terminal.storage.downloader import Downloader
from tests import tusclient
from tests.conftest import add_account, admin_session, seed_county, server_config, terminal_token

pytestmark = pytest.mark.asyncio
KEY = {"aws_access_key_id": "yuanjiao-test", "aws_secret_access_key": "yuanjiao-test-secret"}


@dataclass
class Moto:
    """moto's standalone S3 server, its own process on loopback. `stop` halts the process
    (SIGSTOP): the bucket stops answering, as a hung or cut-off store does, and `start`
    lets it go on (SIGCONT) with its buckets intact."""

    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    stopped: bool = False

    def launch(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.proc.stdout is not None
        end = time.monotonic() + 60
        while not self.port:
            line = self.proc.stdout.readline().decode(errors="replace")
            assert line and time.monotonic() < end, "moto's server did not start"
            if m := re.search(r"Running on http://127\.0\.0\.1:(\d+)", line):
                self.port = int(m[1])
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # keep the pipe drained

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.stopped = True

    def start(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.stopped = False

    def close(self) -> None:
        if self.proc is not None:
            if self.stopped:
                self.start()
            self.proc.terminate()
            self.proc.wait(15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", **KEY)


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    m = Moto()
    m.launch()
    try:
        yield m
    finally:
        m.close()


def s3_config(tmp_path: Path, moto: Moto, bucket: str, **changes: object) -> ServerConfig:
    settings: dict[str, object] = {"s3_timeout_seconds": 0.5, "store_retry_seconds": 0.3, **changes}
    return server_config(
        tmp_path, media_store="s3", s3_endpoint_url=moto.url, s3_bucket=bucket,
        s3_access_key_id=KEY["aws_access_key_id"], s3_secret_access_key=KEY["aws_secret_access_key"],
        s3_addressing_style="path", **settings)


def new_bucket(moto: Moto) -> str:
    name = f"yj-{uuid.uuid4().hex[:12]}"
    moto.client().create_bucket(Bucket=name)
    return name


@dataclass
class County:
    running: RunningServer
    admin: aiohttp.ClientSession
    token: str
    bucket: str


@pytest.fixture
async def county(tmp_path: Path, moto: Moto) -> AsyncIterator[County]:
    bucket = await asyncio.to_thread(new_bucket, moto)
    async with RunningServer(s3_config(tmp_path, moto, bucket)) as running:
        await seed_county(running)
        async with admin_session(running, await add_account(running)) as admin:
            token = await terminal_token(admin, "T140121100001")
            yield County(running, admin, token, bucket)


async def _object(moto: Moto, bucket: str, key: str) -> bytes:
    def get() -> bytes:
        return bytes(moto.client().get_object(Bucket=bucket, Key=key)["Body"].read())
    return await asyncio.to_thread(get)


async def _upload(admin: aiohttp.ClientSession, data: bytes) -> aiohttp.ClientResponse:
    return await tusclient.upload(admin, data, chunk=40_000, title="桶里的片子")


def _local_media(config: ServerConfig) -> list[Path]:
    return [p for p in config.data_dir.rglob("*") if p.is_file() and p.suffix in ("", ".part")
            and "sqlite" not in p.name and p.name != "signing-key.pem"]


_LOCAL_DISK_SERVER = """
import asyncio, sys
from pathlib import Path
import aiohttp
from server.config import ServerConfig
from server.runner import RunningServer

async def main() -> None:
    config = ServerConfig(data_dir=Path(sys.argv[1]), port=0, zeroconf=False, min_free_bytes=0)
    async with RunningServer(config) as running, aiohttp.ClientSession(running.url) as http:
        async with http.get("/api/v1/server") as r:
            print(r.status)
    print("boto3" in sys.modules, "botocore" in sys.modules)

asyncio.run(main())
"""


async def test_a_county_on_local_disk_does_not_load_the_s3_client(tmp_path: Path) -> None:
    """boto3 is imported only with a bucket configured: a county's server on local disk
    starts and answers without it (it is 10 MB of the idle server's memory)."""
    out = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", _LOCAL_DISK_SERVER, str(tmp_path / "server")],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["200", "False", "False"], out.stdout


async def test_upload_lands_in_the_bucket_under_its_sha256(county: County, moto: Moto,
                                                           clip: Path) -> None:
    data = clip.read_bytes()
    r = await _upload(county.admin, data)
    assert r.status == 204, r.status
    sha = hashlib.sha256(data).hexdigest()
    assert r.headers["Yuanjiao-Sha256"] == sha
    assert await _object(moto, county.bucket, sha) == data
    async with county.admin.get(f"/api/v1/admin/contents/{r.headers['Yuanjiao-Content-Id']}") as cr:
        poster = (await cr.json())["poster_sha256"]
    assert (await _object(moto, county.bucket, poster))[:2] == b"\xff\xd8"  # the poster too
    assert _local_media(county.running.config) == []  # no copy left on the server's disk


async def test_blob_is_a_short_lived_redirect_after_the_token_check(county: County, clip: Path) -> None:
    data = clip.read_bytes()
    await _upload(county.admin, data)
    sha = hashlib.sha256(data).hexdigest()
    async with aiohttp.ClientSession(county.running.url) as anonymous:
        async with anonymous.get(f"/blobs/{sha}", allow_redirects=False) as r:
            assert r.status == 401
            assert "Location" not in r.headers
        auth = {"Authorization": f"Bearer {county.token}"}
        async with anonymous.get(f"/blobs/{sha}", headers=auth, allow_redirects=False) as r:
            assert r.status == 307
            location = r.headers["Location"]
            assert r.headers["Cache-Control"] == "no-store"
            assert r.headers["ETag"] == f'"{sha}"'
        assert location.startswith(county.running.config.s3_endpoint_url or "")
        assert "X-Amz-Signature=" in location and "X-Amz-Expires=300" in location
        async with anonymous.head(f"/blobs/{sha}", headers=auth) as r:  # answered here
            assert r.status == 200 and r.content_length == len(data)
        async with anonymous.get(f"/blobs/{sha}", headers={**auth, "If-None-Match": f'"{sha}"'},
                                 allow_redirects=False) as r:
            assert r.status == 304
        async with anonymous.get(f"/blobs/{'0' * 64}", headers=auth, allow_redirects=False) as r:
            assert r.status == 404


async def test_terminal_fetches_and_resumes_through_the_redirect(county: County, clip: Path,
                                                                 tmp_path: Path) -> None:
    data = clip.read_bytes()
    await _upload(county.admin, data)
    sha = hashlib.sha256(data).hexdigest()
    piece_size = 16 * 1024
    pieces = piece_hashes(clip, piece_size)
    auth = {"Authorization": f"Bearer {county.token}"}
    async with aiohttp.ClientSession() as http:
        downloader = Downloader(http)
        fetched = await downloader.fetch(county.running.url, sha, len(data), tmp_path / "a.part",
                                         tmp_path / "a", auth, piece_size=piece_size, pieces=pieces)
        assert fetched.resumed_from == 0 and fetched.received == len(data)
        assert (tmp_path / "a").read_bytes() == data
        kept = len(data) // 3
        (tmp_path / "b.part").write_bytes(data[:kept])
        fetched = await downloader.fetch(county.running.url, sha, len(data), tmp_path / "b.part",
                                         tmp_path / "b", auth, piece_size=piece_size, pieces=pieces)
        assert fetched.resumed_from == kept and fetched.restarts == 0
        assert fetched.received == len(data) - kept  # only the rest crossed the link
        assert hashlib.sha256((tmp_path / "b").read_bytes()).hexdigest() == sha


@dataclass
class RecordingCdn:
    """A real HTTP front for the bucket, as a CDN is: it records the headers each GET
    arrived with and fetches from the private bucket with its own origin credentials."""

    moto: Moto
    seen: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(dict(request.headers))
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("range",)}
        bucket, _, key = request.path.lstrip("/").partition("/")
        origin = self.moto.client().generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60)
        async with aiohttp.ClientSession() as s, s.get(origin, headers=headers) as up:
            body = await up.read()
            keep = {k: v for k, v in up.headers.items()
                    if k.lower() in ("content-range", "content-type", "etag", "accept-ranges")}
            return web.Response(status=up.status, body=body, headers=keep)


async def test_cdn_base_url_gets_the_range_never_the_token(tmp_path: Path, moto: Moto,
                                                           clip: Path) -> None:
    bucket = await asyncio.to_thread(new_bucket, moto)
    cdn = RecordingCdn(moto)
    app = web.Application()
    app.router.add_get("/{tail:.*}", cdn.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    cdn_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = s3_config(tmp_path, moto, bucket,
                       s3_public_base_url=f"http://127.0.0.1:{cdn_port}/{bucket}")
    try:
        async with RunningServer(config) as running:
            await seed_county(running)
            async with admin_session(running, await add_account(running)) as admin:
                token = await terminal_token(admin, "T140121100001")
                data = clip.read_bytes()
                await _upload(admin, data)
                sha = hashlib.sha256(data).hexdigest()
                # aiohttp's own redirect handling, with the token as a session default
                async with aiohttp.ClientSession(
                        running.url, headers={"Authorization": f"Bearer {token}"}) as terminal, \
                        terminal.get(f"/blobs/{sha}", headers={"Range": "bytes=100-"}) as r:
                    assert r.status == 206
                    assert r.headers["Content-Range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
                    assert await r.read() == data[100:]
                # the terminal's downloader, resuming
                (tmp_path / "c.part").write_bytes(data[:5000])
                async with aiohttp.ClientSession() as http:
                    fetched = await Downloader(http).fetch(
                        running.url, sha, len(data), tmp_path / "c.part", tmp_path / "c",
                        {"Authorization": f"Bearer {token}"})
                assert fetched.resumed_from == 5000 and fetched.received == len(data) - 5000
                assert (tmp_path / "c").read_bytes() == data
    finally:
        await runner.cleanup()
    assert [h.get("Range") for h in cdn.seen] == ["bytes=100-", "bytes=5000-"]
    assert all("Authorization" not in h and "If-Range" not in h for h in cdn.seen), cdn.seen


async def _wait_for(check: Any, deadline: float, what: str) -> Any:
    end = time.monotonic() + deadline
    while True:
        got = await check()
        if got:
            return got
        assert time.monotonic() < end, f"gave up waiting for {what}"
        await asyncio.sleep(0.1)


async def test_bucket_outage_keeps_the_upload_and_recovers_without_restart(
        county: County, moto: Moto, clip: Path, clip2: Path) -> None:
    config = county.running.config
    served = clip.read_bytes()
    await _upload(county.admin, served)
    served_sha = hashlib.sha256(served).hexdigest()
    data = clip2.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    auth = {"Authorization": f"Bearer {county.token}"}
    await asyncio.to_thread(moto.stop)
    try:
        created = await tusclient.create(county.admin, len(data), title="断网时上传")
        location = created.headers["Location"]
        r = await tusclient.patch(county.admin, location, 0, data, checksum="sha256")
        assert r.status == 503
        assert int(r.headers["Retry-After"]) >= 1
        body = await r.json()
        assert body["error"]["code"] == "store_unavailable"
        assert body["error"]["message"].startswith("媒体存储")  # Chinese first
        assert "bucket" in body["error"]["message_en"]
        async with county.admin.patch(location, data=b"", headers={
                **tusclient.TUS, "Upload-Offset": str(len(data)),
                "Content-Type": "application/offset+octet-stream"}) as again:
            # the client's retry: the bucket is still down, or the server's own retry holds
            # the upload right now; either way 503 with Retry-After, never a 409 or a loss
            assert again.status == 503 and "Retry-After" in again.headers
            assert (await again.json())["error"]["code"] in ("store_unavailable", "upload_storing")
        # nothing lost: the whole file is kept, and HEAD says so
        parts = list(config.uploads_dir.glob("*.part"))
        assert [p.read_bytes() == data for p in parts] == [True]
        async with county.admin.head(location, headers=tusclient.TUS) as h:
            # whole but not content yet: not "offset == length", which a tus client takes for done
            assert h.status == 503 and int(h.headers["Retry-After"]) >= 1
            assert h.headers["Upload-Offset"] == str(len(data))
            assert "Yuanjiao-Content-Id" not in h.headers
        # a blob the server has not seen in the bucket: 503 too, not a redirect into nothing
        async with aiohttp.ClientSession(county.running.url) as t:
            async with t.get(f"/blobs/{sha}", headers=auth, allow_redirects=False) as b:
                assert b.status == 503 and "Retry-After" in b.headers
            async with t.get(f"/blobs/{served_sha}", headers=auth, allow_redirects=False) as b:
                assert b.status == 307  # known to be there: served without asking the bucket
        await asyncio.sleep(1.0)  # a few retry rounds go by while the bucket is down
    finally:
        await asyncio.to_thread(moto.start)

    async def stored() -> str | None:
        async with county.admin.head(location, headers=tusclient.TUS) as h:
            return h.headers.get("Yuanjiao-Content-Id")

    assert await _wait_for(stored, 15.0, "the kept upload to be stored")
    assert await _object(moto, county.bucket, sha) == data
    assert list(config.uploads_dir.glob("*.part")) == []
    async with aiohttp.ClientSession(county.running.url, headers=auth) as t, \
            t.get(f"/blobs/{sha}", headers={"Range": "bytes=10-19"}) as b:
        assert b.status == 206 and await b.read() == data[10:20]


async def test_multipart_upload_and_local_reads(tmp_path: Path, moto: Moto) -> None:
    bucket = await asyncio.to_thread(new_bucket, moto)
    config = s3_config(tmp_path, moto, bucket, s3_multipart_bytes=5 << 20)
    store = await asyncio.to_thread(S3Store.from_config, config)
    big = tmp_path / "big.bin"
    data = os.urandom(11 << 20)
    await asyncio.to_thread(big.write_bytes, data)
    sha = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
    await asyncio.to_thread(store.put, big, sha)
    assert not big.exists()
    head = await asyncio.to_thread(lambda: moto.client().head_object(Bucket=bucket, Key=sha))
    assert head["ETag"].endswith('-3"')  # three parts of 5, 5 and 1 MiB
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    async with local_file(store, sha, scratch) as path:
        assert await asyncio.to_thread(lambda: hashlib.sha256(path.read_bytes()).hexdigest()) == sha
    assert list(scratch.iterdir()) == []  # the fetched copy is gone afterwards
    with pytest.raises(FileNotFoundError):
        async with local_file(store, "1" * 64, scratch):
            pass


async def test_backfill_reads_from_the_bucket(county: County, clip: Path) -> None:
    from server.appkeys import DB
    from server.ingest import backfill_pieces

    data = clip.read_bytes()
    await _upload(county.admin, data)
    sha = hashlib.sha256(data).hexdigest()
    db = county.running.app[DB]
    await db.write(lambda c: c.execute(text("DELETE FROM content_pieces")))
    assert isinstance(county.running.app[STORE], S3Store)
    config = county.running.config
    assert await backfill_pieces(db, county.running.app[STORE], config.piece_size, config.uploads_dir) >= 1
    rows = await db.read(lambda c: c.execute(text("SELECT sha256 FROM content_pieces")).all())
    assert sha in {r[0] for r in rows}


async def test_usb_bundle_is_written_from_the_bucket(county: County, clip: Path, tmp_path: Path) -> None:
    from server.appkeys import CONFIG, DB, SERVER_ID, SIGNER
    from server.bundles import write_bundle
    from shared import bundle as b

    data = clip.read_bytes()
    r = await _upload(county.admin, data)
    sha = r.headers["Yuanjiao-Sha256"]
    async with county.admin.post("/api/v1/admin/assignments", json={
            "content_id": r.headers["Yuanjiao-Content-Id"], "scope": "unit",
            "target": "140121100"}) as a:
        assert a.status == 201, await a.text()
    stick = tmp_path / "stick"
    stick.mkdir()
    app = county.running.app
    report = await write_bundle(app[DB], app[STORE], app[SIGNER], app[CONFIG], app[SERVER_ID], stick,
                                terminal_ids=("T140121100001",), part_limit=64 * 1024)
    assert report.complete and report.items == 1 and report.parts_written >= 1
    parts = sorted(stick.rglob(f"{sha}*"))
    copied = b"".join(b.part_path(stick, sha, i).read_bytes() for i in range(report.parts_written))
    assert parts and copied == data  # the stick holds the bytes the bucket holds
    assert list(county.running.config.uploads_dir.glob("*.fetch")) == []  # the copy is gone


async def test_pinned_terminal_reaches_an_https_cdn_through_its_second_session(
        tmp_path: Path, moto: Moto, clip: Path) -> None:
    """The county server's certificate is pinned; the CDN's is another, checked against
    trusted CAs: the redirect hop must not go through the pinned session."""
    import ssl

    from terminal.errors import ServerUnreachable
    from tests.test_tls import make_certificate, pin_of

    server_cert, server_key = await asyncio.to_thread(make_certificate, tmp_path / "county")
    cdn_cert, cdn_key = await asyncio.to_thread(make_certificate, tmp_path / "cdn")
    bucket = await asyncio.to_thread(new_bucket, moto)
    cdn = RecordingCdn(moto)
    app = web.Application()
    app.router.add_get("/{tail:.*}", cdn.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    cdn_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cdn_tls.load_cert_chain(cdn_cert, cdn_key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=cdn_tls)
    await site.start()
    cdn_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = s3_config(tmp_path, moto, bucket, tls_certificate=server_cert, tls_key=server_key,
                       s3_public_base_url=f"https://127.0.0.1:{cdn_port}/{bucket}")
    pin = aiohttp.Fingerprint(bytes.fromhex(pin_of(server_cert)))
    trust_cdn = ssl.create_default_context(cafile=str(cdn_cert))
    try:
        async with RunningServer(config) as running:
            await seed_county(running)
            async with admin_session(running, await add_account(running)) as admin:
                token = await terminal_token(admin, "T140121100001")
                data = clip.read_bytes()
                await _upload(admin, data)
            sha = hashlib.sha256(data).hexdigest()
            auth = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=pin)) as pinned, \
                    aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust_cdn)) as foreign:
                with pytest.raises(ServerUnreachable):  # the pin does not fit the CDN
                    await Downloader(pinned).fetch(running.url, sha, len(data), tmp_path / "x.part",
                                                   tmp_path / "x", auth)
                fetched = await Downloader(pinned, foreign=foreign).fetch(
                    running.url, sha, len(data), tmp_path / "y.part", tmp_path / "y", auth)
            assert fetched.received == len(data) and (tmp_path / "y").read_bytes() == data
    finally:
        await runner.cleanup()
    assert len(cdn.seen) == 1 and "Authorization" not in cdn.seen[0]


async def test_the_clients_next_patch_stores_a_kept_upload(tmp_path: Path, moto: Moto, clip2: Path) -> None:
    bucket = await asyncio.to_thread(new_bucket, moto)
    # the server's own retry is an hour away here: only the client's PATCH can store it
    config = s3_config(tmp_path, moto, bucket, store_retry_seconds=3600.0)
    data = clip2.read_bytes()
    async with RunningServer(config) as running, \
            admin_session(running, await add_account(running)) as admin:
        await asyncio.to_thread(moto.stop)
        try:
            created = await tusclient.create(admin, len(data), title="稍后存入")
            location = created.headers["Location"]
            r = await tusclient.patch(admin, location, 0, data)
            assert r.status == 503 and r.headers["Retry-After"] == "3600"
        finally:
            await asyncio.to_thread(moto.start)
        extra = await tusclient.patch(admin, location, len(data), b"x")
        assert extra.status == 413  # nothing more fits; the kept bytes stay as they are
        done = await tusclient.patch(admin, location, len(data), b"")
        assert done.status == 204
        sha = done.headers["Yuanjiao-Sha256"]
        assert sha == hashlib.sha256(data).hexdigest() and done.headers["Yuanjiao-Content-Id"]
    assert await _object(moto, bucket, sha) == data


async def test_a_bucket_that_refuses_the_settings_stops_the_start(tmp_path: Path, moto: Moto) -> None:
    from server.media.store import StoreRefused

    config = s3_config(tmp_path, moto, "no-such-bucket-here")
    with pytest.raises(StoreRefused, match="check s3_bucket"):
        async with RunningServer(config):
            pass


async def test_the_server_starts_while_the_bucket_is_down(tmp_path: Path, moto: Moto) -> None:
    bucket = await asyncio.to_thread(new_bucket, moto)
    await asyncio.to_thread(moto.stop)
    try:
        async with RunningServer(s3_config(tmp_path, moto, bucket)) as running, \
                aiohttp.ClientSession(running.url) as http, http.get("/api/v1/server") as r:
            assert r.status == 200
    finally:
        await asyncio.to_thread(moto.start)

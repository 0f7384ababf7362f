"""The county deployment: real nginx in front of two real server processes on one data
directory (SQLite in WAL), blob bytes sent by nginx through X-Accel-Redirect.

Through nginx a blob comes out whole and by Range (206, the server's sha256 ETag, so a
terminal's If-Range resumes); without a token the server answers 401 and nginx sends no
bytes; the internal media location cannot be reached from outside. What one process
writes the other sees: a tus upload PATCHed on one and HEADed/finished on the other, a
PATCH refused (409) while the other process writes the same upload, a terminal revoked
on one refused by the other within the token cache's recheck (well inside its TTL),
login failures counted across both, the same catalog ETag from both, and one peer
fetcher elected per LAN across both. Processes starting together on a fresh directory end
with one signing key, and deploy/nginx-yuanjiao-county.conf passes `nginx -t`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from server.auth.token_cache import RECHECK_SECONDS, TTL_SECONDS
from server.runner import RunningServer
from tests import tusclient
from tests.conftest import (
    REPO,
    add_account,
    database_url,
    seed_county,
    server_config,
    terminal_token,
)

pytestmark = [pytest.mark.asyncio,
              pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                                 reason="nginx is not installed (scripts/setup installs it)")]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TERMINAL = "T140121100001"

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    upstream yuanjiao {{
        server 127.0.0.1:{port_a};
        server 127.0.0.1:{port_b};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        location /api/v1/uploads {{
            client_max_body_size 0;
            proxy_request_buffering off;
            proxy_pass http://yuanjiao;
        }}
        location /blobs/ {{ proxy_pass http://yuanjiao; }}
        location /_media/ {{
            internal;
            alias {media}/;
            sendfile on;
            tcp_nopush on;
            etag off;
            add_header ETag $upstream_http_etag;
        }}
        location / {{ client_max_body_size 32m; proxy_pass http://yuanjiao; }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    proc: asyncio.subprocess.Process
    url: str


@contextlib.asynccontextmanager
async def server_process(data_dir: Path, log: Path) -> AsyncIterator[Proc]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "YUANJIAO_ACCEL_REDIRECT_PREFIX": "/_media/",
           "YUANJIAO_TRUST_PROXY": "true", "YUANJIAO_MIN_FREE_BYTES": "0"}
    if url := database_url(data_dir):  # the run's engine: the same database for both
        env["YUANJIAO_DATABASE_URL"] = url
    log_file = await asyncio.to_thread(open, log, "ab")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "serve", "--data-dir", str(data_dir), "--port", "0",
        "--no-zeroconf", cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=log_file)
    try:
        assert proc.stdout is not None
        url = None
        async with asyncio.timeout(60):
            while url is None:
                line = (await proc.stdout.readline()).decode()
                assert line, f"the server process ended: {log.read_text()[-2000:]}"
                if m := re.search(r"on (http://127\.0\.0\.1:\d+)", line):
                    url = m[1]
        yield Proc(proc, url)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(15):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log_file.close()


@dataclass
class County:
    a: str  # one server process
    b: str  # the other
    nginx: str
    admin: str  # API token
    token: str  # the terminal's token
    data_dir: Path


@pytest.fixture
async def county(tmp_path: Path) -> AsyncIterator[County]:
    config = server_config(tmp_path)
    async with RunningServer(config) as running:  # the data directory, made once
        await seed_county(running)
        admin = await add_account(running)
    async with server_process(config.data_dir, tmp_path / "a.log") as a, \
            server_process(config.data_dir, tmp_path / "b.log") as b:
        port = _free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp_path, port=port, media=config.media_dir,
                                          port_a=a.url.rsplit(":", 1)[1], port_b=b.url.rsplit(":", 1)[1]))
        nginx = await asyncio.create_subprocess_exec(
            NGINX, "-p", str(tmp_path), "-e", str(tmp_path / "nginx-error.log"), "-c", str(conf))
        url = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http, asyncio.timeout(20):
                while True:
                    with contextlib.suppress(aiohttp.ClientConnectionError):
                        async with http.get(f"{url}/api/v1/server") as r:
                            if r.status == 200:
                                break
                    await asyncio.sleep(0.05)
            async with aiohttp.ClientSession(url, headers=_bearer(admin)) as http:
                token = await terminal_token(http, TERMINAL)
            yield County(a.url, b.url, url, admin, token, config.data_dir)
        finally:
            nginx.terminate()
            await nginx.wait()


def _locked(path: Path) -> bool:
    """Some process holds a flock on `path` (read from /proc/locks: looking takes no lock)."""
    inode = path.stat().st_ino
    return any(line.split()[1] == "FLOCK" and line.split()[5].endswith(f":{inode}")
               for line in Path("/proc/locks").read_text().splitlines())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _upload_across(county: County, data: bytes) -> str:
    """Create and PATCH the first half on A, HEAD and finish on B; returns the sha256."""
    half = len(data) // 2
    async with aiohttp.ClientSession(county.a, headers=_bearer(county.admin)) as a, \
            aiohttp.ClientSession(county.b, headers=_bearer(county.admin)) as b:
        created = await tusclient.create(a, len(data), title="两个进程")
        location = created.headers["Location"]
        assert (await tusclient.patch(a, location, 0, data[:half], checksum="sha256")).status == 204
        async with b.head(location, headers=tusclient.TUS) as h:
            assert h.headers["Upload-Offset"] == str(half)  # B sees what A recorded
        done = await tusclient.patch(b, location, half, data[half:], checksum="sha256")
        assert done.status == 204, done.status
        async with a.head(location, headers=tusclient.TUS) as h:
            assert h.headers["Yuanjiao-Content-Id"] == done.headers["Yuanjiao-Content-Id"]
        return str(done.headers["Yuanjiao-Sha256"])


async def test_blobs_through_nginx_and_x_accel(county: County, clip: Path) -> None:
    data = clip.read_bytes()
    sha = await _upload_across(county, data)
    assert sha == hashlib.sha256(data).hexdigest()
    async with aiohttp.ClientSession(county.nginx) as http:
        async with http.get(f"/blobs/{sha}", headers=_bearer(county.token)) as r:
            assert r.status == 200 and await r.read() == data
            assert r.headers["ETag"] == f'"{sha}"'
            assert "X-Accel-Redirect" not in r.headers
        ranged = {**_bearer(county.token), "Range": "bytes=1000-", "If-Range": f'"{sha}"'}
        async with http.get(f"/blobs/{sha}", headers=ranged) as r:
            assert r.status == 206  # the terminal's resume: If-Range holds against the sha256
            assert r.headers["Content-Range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
            assert await r.read() == data[1000:]
        async with http.head(f"/blobs/{sha}", headers=_bearer(county.token)) as r:
            assert r.status == 200 and r.content_length == len(data)
        async with http.get(f"/blobs/{sha}", headers={"Range": "bytes=0-"}) as r:
            assert r.status == 401
            body = await r.read()
            assert data[:64] not in body and b'"code":"unauthorized"' in body
        async with http.get(f"/_media/{sha[:2]}/{sha}") as r:
            assert r.status == 404  # internal only
    # straight from a process, the answer is the hand-over, not the bytes
    async with aiohttp.ClientSession(county.a) as http, \
            http.get(f"/blobs/{sha}", headers=_bearer(county.token)) as r:
        assert r.headers["X-Accel-Redirect"] == f"/_media/{sha[:2]}/{sha}"
        assert await r.read() == b""


async def test_one_upload_is_written_by_one_process_at_a_time(county: County, clip: Path) -> None:
    data = clip.read_bytes()
    async with aiohttp.ClientSession(county.b, headers=_bearer(county.admin)) as b:
        created = await tusclient.create(b, len(data), title="同时写")
        location = created.headers["Location"]
        host, port = county.a.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(  # a PATCH on A that is still sending its body
            f"PATCH {location} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
            f"Authorization: Bearer {county.admin}\r\nUpload-Offset: 0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
            .encode() + data[:1000])
        await writer.drain()
        part = county.data_dir / "uploads" / (location.rsplit("/", 1)[1] + ".part")
        end = time.monotonic() + 10
        while not await asyncio.to_thread(_locked, part):  # until A holds the upload
            assert time.monotonic() < end, "A never took the upload"
            await asyncio.sleep(0.02)
        r = await tusclient.patch(b, location, 0, data[:10])
        assert r.status == 409  # B may not write while A does
        writer.write(data[1000:])
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        writer.close()
        assert head.startswith(b"HTTP/1.1 204"), head
        assert part.exists() is False  # whole, stored
        async with b.head(location, headers=tusclient.TUS) as h:
            assert h.headers["Upload-Offset"] == str(len(data))


async def test_revocation_on_one_process_is_seen_by_the_other(county: County) -> None:
    url = f"/api/v1/terminals/{TERMINAL}/catalog"
    async with aiohttp.ClientSession(county.a, headers=_bearer(county.token)) as a, \
            aiohttp.ClientSession(county.b, headers=_bearer(county.token)) as b:
        etags = []
        for s in (a, b):  # both processes now hold the token in their caches
            async with s.get(url) as r:
                assert r.status == 200
                etags.append(r.headers["ETag"])
        assert etags[0] == etags[1]  # the catalog version is the database's, not a process's
        async with aiohttp.ClientSession(county.a, headers=_bearer(county.admin)) as admin, \
                admin.post(f"/api/v1/admin/terminals/{TERMINAL}/revoke") as r:
            assert r.status == 204, await r.text()
        revoked = time.monotonic()
        while True:
            async with b.get(url) as r:
                if r.status == 401:
                    assert (await r.json())["error"]["code"] == "terminal_revoked"
                    break
                assert r.status == 200
            waited = time.monotonic() - revoked
            assert waited < RECHECK_SECONDS + 2 < TTL_SECONDS, f"B still accepts after {waited:.1f} s"
            await asyncio.sleep(0.05)


async def test_login_failures_count_across_processes(county: County) -> None:
    body = {"username": "admin", "password": "wrong password"}
    statuses = []
    for i in range(6):
        async with aiohttp.ClientSession(county.a if i % 2 else county.b) as s, \
                s.post("/api/v1/auth/login", json=body) as r:
            statuses.append(r.status)
    assert statuses[:5] == [401] * 5 and statuses[5] == 429, statuses


async def test_one_lan_elects_one_fetcher_across_processes(county: County) -> None:
    other = "T140121100002"
    async with aiohttp.ClientSession(county.nginx, headers=_bearer(county.admin)) as admin:
        other_token = await terminal_token(admin, other)
    sha = "ab" * 32
    async with aiohttp.ClientSession(county.a, headers=_bearer(county.token)) as a, \
            aiohttp.ClientSession(county.b, headers=_bearer(other_token)) as b:
        async with a.get(f"/api/v1/terminals/{TERMINAL}/sources/{sha}", params={"lan": other}) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["wait_seconds"] == 0  # the first asker fetches it
        async with b.get(f"/api/v1/terminals/{other}/sources/{sha}", params={"lan": TERMINAL}) as r:
            assert r.status == 200
            assert (await r.json())["wait_seconds"] > 0  # the other process knows: wait for the peer


async def test_processes_starting_together_share_one_signing_key(tmp_path: Path) -> None:
    """Not through nginx: the key file race of several processes on a fresh data directory."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from server.signer import Signer

    path = tmp_path / "data" / "signing-key.pem"
    start = Barrier(8)

    def make() -> str:
        start.wait()
        return Signer.load_or_create(path).fingerprint

    def race() -> tuple[set[str], str, list[str]]:
        with ThreadPoolExecutor(8) as pool:
            made = set(pool.map(lambda _: make(), range(8)))
        return made, Signer.load_or_create(path).fingerprint, [p.name for p in path.parent.iterdir()]

    made, on_file, names = await asyncio.to_thread(race)
    assert made == {on_file}  # every one signs with the file's key
    assert names == ["signing-key.pem"]


async def test_the_deploy_example_is_valid_for_the_installed_nginx(tmp_path: Path) -> None:
    """deploy/nginx-yuanjiao-county.conf, with this test's certificate, ports and paths."""
    from tests.test_tls import make_certificate

    cert, key = await asyncio.to_thread(make_certificate, tmp_path / "tls")
    site = (REPO / "deploy" / "nginx-yuanjiao-county.conf").read_text()
    for old, new in (("/etc/ssl/yuanjiao/fullchain.pem", str(cert)),
                     ("/etc/ssl/yuanjiao/privkey.pem", str(key)),
                     ("/var/lib/yuanjiao/media/", f"{tmp_path}/media/"),
                     ("listen 80;", f"listen 127.0.0.1:{_free_port()};"),
                     ("listen 443 ", f"listen 127.0.0.1:{_free_port()} ")):
        assert old in site, old
        site = site.replace(old, new)
    (tmp_path / "site.conf").write_text(site)
    temp = " ".join(f"{k}_temp_path {tmp_path}/{k};" for k in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ {temp} include {tmp_path}/site.conf; }}\n")
    check = await asyncio.create_subprocess_exec(
        NGINX, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
        "-c", str(tmp_path / "nginx.conf"), stderr=asyncio.subprocess.PIPE)
    _, err = await check.communicate()
    assert check.returncode == 0, err.decode()

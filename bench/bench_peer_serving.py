"""How fast one terminal serves a peer, against the county server's blobs, same machine.

    python3 bench/bench_peer_serving.py [--quick] [--seconds D]

The county server (its own process, loopback) holds a film; a terminal daemon (its own
process) downloads it and serves it on `/peer/blobs/<sha256>`. A second enrolled
terminal's credential and key sign the peer requests. Then the same film is fetched
over and over for D seconds, with 1 and 4 concurrent clients, from the server's
`/blobs/<sha256>` (the reference, with that terminal's token) and from the terminal's
peer endpoint (no cap: `peer_upload_limit = 0`, `peer_max_uploads` raised to 8).
Prints MB/s for each and the ratio peer/server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import time

import aiohttp
import msgspec
from _common import REPO, admin_token, free_port, run_cli, temp_dir, wait_http

sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives.serialization import load_pem_private_key

from shared import peers as sp
from shared.timeutil import utcnow
from tests.conftest import make_clip

T1, T2 = "T140121100001", "T140121100002"


def terminal(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "terminal", *args], cwd=REPO, check=True,
                          capture_output=True, text=True).stdout


async def pull(url: str, headers: dict[str, str], clients: int, seconds: float) -> float:
    """MB/s of whole-file GETs of `url` by `clients` loops for `seconds`."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop(http: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with http.get(url, headers=headers) as r:
                assert r.status == 200, r.status
                async for block in r.content.iter_chunked(1 << 20):
                    done += len(block)

    started = time.perf_counter()
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        await asyncio.gather(*(loop(http) for _ in range(clients)))
    return done / 1e6 / (time.perf_counter() - started)


async def main(seconds: float) -> None:
    with temp_dir("yj-bench-peer-serving-", "/tmp") as work:
        data = work / "server"
        run_cli("import-county", str(REPO / "demo" / "county"), data_dir=data)
        token = admin_token(data)
        film = make_clip(work / "film.mp4", 20, "1280x720", 550, "testsrc2")
        run_cli("add", str(film), "--title", "bench", data_dir=data)
        port, status_port = free_port(), free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(  # noqa: ASYNC220 (set-up: nothing runs on the loop yet)
            [sys.executable, "-m", "server", "serve", "--data-dir", str(data),
                                   "--host", "127.0.0.1", "--port", str(port), "--no-zeroconf"],
                                  cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        daemon: subprocess.Popen[bytes] | None = None
        try:
            wait_http(url + "/api/v1/openapi.json", 60, server)
            admin = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(url, headers=admin) as http:
                async with http.get("/api/v1/admin/contents") as r:
                    content = (await r.json())[0]
                async with http.post("/api/v1/admin/assignments", json={
                        "content_id": content["id"], "scope": "village", "target": T1[1:]}) as r:
                    assert r.status == 201
                codes = {}
                for tid in (T1, T2):
                    async with http.post(f"/api/v1/admin/terminals/{tid}/enrollment", json={}) as r:
                        codes[tid] = (await r.json())["code"]
            sha = content["sha256"]
            for tid in (T1, T2):
                terminal("enroll", codes[tid], "--server-url", url, "--data-dir", str(work / tid))
            env = {**os.environ, "YUANJIAO_TERMINAL_PEER_MAX_UPLOADS": "8"}
            daemon = subprocess.Popen(  # noqa: ASYNC220 (set-up, as above)
                [sys.executable, "-m", "terminal", "run", "--data-dir", str(work / T1),
                 "--server-url", url, "--no-zeroconf", "--status-host", "127.0.0.1",
                 "--status-port", str(status_port), "--headless", "--no-progress"],
                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            status = f"http://127.0.0.1:{status_port}/status"
            deadline = time.monotonic() + 120
            async with aiohttp.ClientSession() as http:
                while True:
                    try:
                        async with http.get(status) as r:
                            items = (await r.json())["items"]
                        if any(i["sha256"] == sha and i["state"] == "ready" for i in items):
                            break
                    except aiohttp.ClientError:
                        pass
                    assert time.monotonic() < deadline, "the terminal did not get the film"
                    await asyncio.sleep(0.3)
            with sqlite3.connect(work / T2 / "terminal.sqlite3") as db:
                kv = dict(db.execute("SELECT key, value FROM kv"))
            t2_token = kv["terminal_token"]
            key = load_pem_private_key(kv["terminal_private_key"].encode(), password=None)
            async with aiohttp.ClientSession(url) as http, http.get(
                    f"/api/v1/terminals/{T2}/peer-credential",
                    headers={"Authorization": f"Bearer {t2_token}"}) as r:
                credential = msgspec.json.decode(await r.read(), type=sp.SignedCredential)
            path = f"/peer/blobs/{sha}"
            print(f"one {content['size'] / 1e6:.1f} MB film, fetched whole again and again for "
                  f"{seconds:.0f} s")
            print(f"{'clients':>8}{'server /blobs MB/s':>20}{'peer MB/s':>12}{'peer/server':>13}")
            for clients in (1, 4):
                ref = await pull(f"{url}/blobs/{sha}", {"Authorization": f"Bearer {t2_token}"},
                                 clients, seconds)
                proof = sp.proof_headers(credential, key, "GET", path, utcnow())  # type: ignore[arg-type]
                peer = await pull(f"http://127.0.0.1:{status_port}{path}", proof, clients, seconds)
                print(f"{clients:>8}{ref:>20,.0f}{peer:>12,.0f}{peer / ref:>13.2f}")
        finally:
            for proc in (daemon, server):
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=20)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="3 s per measurement instead of 10")
    p.add_argument("--seconds", type=float, default=None)
    args = p.parse_args()
    asyncio.run(main(args.seconds or (3.0 if args.quick else 10.0)))

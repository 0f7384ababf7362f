"""TLS served directly by the server: HTTPS works, blobs stream over it (sendfile falls
back to copying), and enrollment hands terminals the certificate's sha256 to pin; a
client pinning another fingerprint is refused."""

from __future__ import annotations

import hashlib
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from server.runner import RunningServer
from tests import tusclient
from tests.conftest import add_account, seed_county, server_config

pytestmark = pytest.mark.asyncio


def pin_of(cert: Path) -> str:
    """The sha256 of a PEM certificate's DER form: what terminals pin."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert.read_text())).hexdigest()


def make_certificate(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=yuanjiao.test", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


async def test_https_and_certificate_pin(tmp_path: Path, clip: Path) -> None:
    cert, key = make_certificate(tmp_path)
    der_sha = pin_of(cert)
    config = server_config(tmp_path, tls_certificate=cert, tls_key=key)
    async with RunningServer(config) as running:
        assert running.url.startswith("https://")
        await seed_county(running)
        token = await add_account(running)
        pinned = aiohttp.Fingerprint(bytes.fromhex(der_sha))
        connector = aiohttp.TCPConnector(ssl=pinned)
        async with aiohttp.ClientSession(running.url, connector=connector,
                                         headers={"Authorization": f"Bearer {token}"}) as http:
            up = await tusclient.upload(http, clip.read_bytes(), title="片")
            assert up.status == 204
            async with http.get(f"/blobs/{up.headers['Yuanjiao-Sha256']}",
                                headers={"Range": "bytes=100-"}) as r:
                assert r.status == 206 and await r.read() == clip.read_bytes()[100:]
            async with http.post("/api/v1/admin/terminals/T140121100001/enrollment", json={}) as r:
                code = (await r.json())["code"]
            async with http.post("/api/v1/enroll", json={"code": code}) as r:
                enrolled = await r.json()
        assert enrolled["tls_certificate_sha256"] == der_sha
        wrong = aiohttp.TCPConnector(ssl=aiohttp.Fingerprint(hashlib.sha256(b"other").digest()))
        async with aiohttp.ClientSession(running.url, connector=wrong) as http:
            with pytest.raises(aiohttp.ServerFingerprintMismatch):
                await http.get("/api/v1/server")


async def test_no_pin_over_plain_http(tmp_path: Path) -> None:
    config = server_config(tmp_path)
    async with RunningServer(config) as running, aiohttp.ClientSession(running.url) as http:
        await seed_county(running)
        token = await add_account(running)
        async with http.post("/api/v1/admin/terminals/T140121100001/enrollment", json={},
                             headers={"Authorization": f"Bearer {token}"}) as r:
            code = (await r.json())["code"]
        async with http.post("/api/v1/enroll", json={"code": code}) as r:
            assert (await r.json())["tls_certificate_sha256"] is None

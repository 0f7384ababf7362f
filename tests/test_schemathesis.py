"""Property-based fuzzing of the served OpenAPI document with schemathesis, bounded in
examples and time: no request it makes gets a 5xx, an undocumented status, or an answer
that breaks the document's schemas. Run once as an admin and once as an enrolled
terminal, so both groups of endpoints are reached past their guards."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from server.runner import RunningServer
from tests import tusclient
from tests.conftest import COUNTY, Server, add_account, admin_session, seed_county, server_config

pytestmark = pytest.mark.asyncio
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"


@pytest.fixture
async def guarded(tmp_path: Path, clip: Path) -> AsyncIterator[Server]:
    config = server_config(tmp_path)
    async with RunningServer(config) as running:
        await seed_county(running)
        token = await add_account(running)
        async with admin_session(running, token) as http:
            r = await tusclient.upload(http, clip.read_bytes(), title="样片")
            assert r.status == 204
            async with http.post("/api/v1/admin/members/import",
                                 data=(COUNTY / "members-sample-gbk.csv").read_bytes()) as m:
                assert m.status == 200
            yield Server(running, http)


async def schemathesis(server: Server, token: str, *select: str) -> tuple[int, str]:
    st = shutil.which("st") or str(Path(sys.executable).parent / "st")
    proc = await asyncio.create_subprocess_exec(
        st, "run", f"{server.url}/api/v1/openapi.json", "-H", f"Authorization: Bearer {token}",
        "-c", CHECKS, "--max-examples", "12", "--seed", "7", "--request-timeout", "20",
        "--phases", "examples,coverage,fuzzing", *select,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=server.config.data_dir.parent,  # its example database stays in tmp_path
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 300)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def assert_exercised(out: str) -> None:
    """The run really generated cases, and none failed."""
    found = re.search(r"(\d+) generated", out)
    assert found and int(found.group(1)) > 50, out[-3000:]
    assert "failures" not in out.split("SUMMARY")[-1].lower() or " 0 failures" in out, out[-3000:]


async def test_admin_endpoints(guarded: Server) -> None:
    code, out = await schemathesis(guarded, guarded.http.headers["Authorization"].split()[1],
                                   "--exclude-path-regex", "^/api/v1/(terminals|uploads|enroll)")
    assert code == 0, out[-6000:]
    assert_exercised(out)


async def test_terminal_endpoints(guarded: Server) -> None:
    async with guarded.http.post("/api/v1/admin/terminals/T140121100001/enrollment", json={}) as r:
        code = (await r.json())["code"]
    async with aiohttp.ClientSession(guarded.url) as anonymous, \
            anonymous.post("/api/v1/enroll", json={"code": code}) as r:
        token = (await r.json())["token"]
    code_, out = await schemathesis(guarded, token, "--include-path-regex",
                                    "^/api/v1/terminals/|^/blobs/")
    assert code_ == 0, out[-6000:]
    assert_exercised(out)

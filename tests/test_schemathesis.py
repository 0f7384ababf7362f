"""The served OpenAPI document is the truth: schemathesis with every check it has
(`-c all`: server errors, status codes, content types, response headers and schemas,
negative data rejected, positive data accepted, missing headers, unsupported methods,
Allow headers, use after free, resource availability, ignored auth, object-level
authorization) and every phase (examples, coverage, fuzzing, stateful) finds nothing.
Run once as an admin and once as an enrolled terminal, so both groups of endpoints are
reached past their guards; the path parameters that name things (the terminal, the
content, its blob, a member) are pinned to ones that exist, so the cases reach the
handlers rather than stopping at 403/404. Each run is bounded in examples and time."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from server.runner import RunningServer
from tests import tusclient
from tests.conftest import (
    ADMIN_PASSWORD,
    COUNTY,
    Server,
    add_account,
    admin_session,
    seed_county,
    server_config,
)

pytestmark = pytest.mark.asyncio
TERMINAL = "T140121100001"
RUN_SECONDS = 200  # each run ends well before this; a hang fails the test instead of CI


@dataclass
class Fuzzed:
    server: Server
    token: str
    parameters: dict[str, str]


@pytest.fixture
async def guarded(tmp_path: Path, clip: Path) -> AsyncIterator[Fuzzed]:
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
            async with http.get("/api/v1/admin/members", params={"q": "陈红华"}) as m:
                member_no = (await m.json())["matches"][0]["member_no"]
            parameters = {
                "path.terminal_id": TERMINAL,
                "path.content_id": r.headers["Yuanjiao-Content-Id"],
                "path.sha256": r.headers["Yuanjiao-Sha256"],
                "path.member_no": member_no,
            }
            yield Fuzzed(Server(running, http), token, parameters)


async def schemathesis(fuzzed: Fuzzed, env: dict[str, str], *select: str) -> tuple[int, str]:
    server = fuzzed.server
    work = server.config.data_dir.parent  # its example database stays in tmp_path
    toml = work / "schemathesis.toml"
    toml.write_text(
        # Refusals no schema can express (see tests/schemathesis_hooks.py): 422 for
        # what the request says, 413 for a chunk past the upload's length, 460 for a
        # chunk that does not match its checksum, 507 for a full disk. "5xx" only keeps
        # these two checks from reporting a server error twice: `not_a_server_error`
        # (in `-c all`) still fails every 5xx.
        '[checks.positive_data_acceptance]\nexpected-statuses = '
        '["2xx", "3xx", "401", "403", "404", "409", "413", "422", "429", "460", "5xx"]\n\n'
        # 412 is tus's answer to a missing or wrong Tus-Resumable, 413 to a too-large
        # Upload-Length.
        '[checks.missing_required_header]\nexpected-statuses = '
        '["400", "401", "403", "406", "412", "415", "422"]\n\n'
        '[checks.negative_data_rejection]\nexpected-statuses = ["400", "401", "403", "404", '
        '"405", "406", "409", "412", "413", "415", "422", "428", "429", "5xx"]\n\n'
        "[parameters]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in fuzzed.parameters.items())
        # tus headers: the document gives their structure (patterns); what the metadata's
        # base64 says (a title, a known kind) and which checksum algorithm is named are
        # checked by the server with 400, as tus clients expect (tests/test_tus.py); a
        # POST to an upload without X-HTTP-Method-Override is tus's 405.
        + '\n[[operations]]\ninclude-path-regex = "^/api/v1/uploads"\n'
        '[operations.checks.positive_data_acceptance]\nexpected-statuses = '
        '["2xx", "3xx", "400", "401", "403", "404", "405", "409", "413", "422", "429", "460", '
        '"5xx"]\n',
        encoding="utf-8")
    st = shutil.which("st") or str(Path(sys.executable).parent / "st")
    proc = await asyncio.create_subprocess_exec(
        st, "--config-file", str(toml), "run", f"{server.url}/api/v1/openapi.json",
        "-c", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", "12", "--seed", "7", "--request-timeout", "20", "-w", "1", *select,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=work,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
             "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "YJ_ST_URL": server.url,
             **env},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    print(out.decode(errors="replace"))  # the whole report, for `pytest -s`
    return proc.returncode, out.decode(errors="replace")


def assert_exercised(out: str) -> None:
    """The run really generated cases, and none failed."""
    found = re.search(r"(\d+) generated", out)
    assert found and int(found.group(1)) > 50, out[-3000:]
    assert "failures" not in out.split("SUMMARY")[-1].lower() or " 0 failures" in out, out[-3000:]


async def test_admin_endpoints(guarded: Fuzzed) -> None:
    code, out = await schemathesis(
        guarded, {"YJ_ST_TOKEN": guarded.token, "YJ_ST_USER": "admin",
                  "YJ_ST_PASSWORD": ADMIN_PASSWORD},
        "--exclude-path-regex", "^/api/v1/terminals/")
    assert code == 0, out[-6000:]
    assert_exercised(out)


async def test_terminal_endpoints(guarded: Fuzzed) -> None:
    async with guarded.server.http.post(f"/api/v1/admin/terminals/{TERMINAL}/enrollment",
                                        json={}) as r:
        code = (await r.json())["code"]
    async with aiohttp.ClientSession(guarded.server.url) as anonymous, \
            anonymous.post("/api/v1/enroll", json={"code": code}) as r:
        token = (await r.json())["token"]
    code_, out = await schemathesis(guarded, {"YJ_ST_TOKEN": token}, "--include-path-regex",
                                    "^/api/v1/terminals/|^/blobs/")
    assert code_ == 0, out[-6000:]
    assert_exercised(out)

"""`yuanjiao-terminal status` prints what `session` needs — every scheduled session's
id with its time and readiness, every cached item's full sha256, the roster's size and
an example command — Chinese first, from the running daemon and from the database when
the daemon is stopped; `session` through the daemon's typed controls starts the session
or prints the refusal's words (Chinese, then English)."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from terminal.daemon import Terminal
from tests.conftest import REPO, serve, server_config
from tests.terminal_helpers import (
    TERMINAL_ID,
    VILLAGE,
    assign,
    enroll,
    import_roster,
    item_state,
    terminal_config,
    upload,
)

pytestmark = pytest.mark.asyncio


async def cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "terminal", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_status_shows_what_session_needs(tmp_path: Path, clip: Path) -> None:
    async with serve(server_config(tmp_path), seed=True) as (running, http):
        content_id, sha = await upload(http, clip, "党课：基层治理")
        await assign(http, content_id)
        await import_roster(http)
        starts = datetime.now(UTC) + timedelta(days=1)
        async with http.post("/api/v1/admin/sessions", json={
            "title": "冬训第一课", "starts_at": starts.isoformat(), "content_ids": [content_id],
            "village_codes": [VILLAGE],
        }) as r:
            assert r.status == 201, await r.text()
            session_id = (await r.json())["id"]
        tconfig = await enroll(http, terminal_config(tmp_path, server_url=running.url), running.url)
        async with Terminal(tconfig) as terminal:
            await terminal.wait_until(item_state(terminal, sha), timeout=60)
            assert terminal.status_server is not None
            where = ["--data-dir", str(tconfig.data_dir), "--terminal-id", TERMINAL_ID,
                     "--status-port", str(terminal.status_server.port)]
            code, out = await cli("status", *where)
            assert code == 0, out
            assert f"--session-id {session_id}" in out and "冬训第一课  已准备好 ready" in out
            assert f"--item {sha}" in out and "可以放映 ready" in out
            assert "名册 roster" in out and " 名党员 members" in out and "名册 roster      0 " not in out
            assert f"yuanjiao-terminal session --session-id {session_id}" in out

            code, out = await cli("session", "--session-id", "no-such-session", *where)
            assert code != 0
            assert "终端拒绝了：课程表里没有这场放映" in out and "no session no-such-session" in out
            code, out = await cli("session", "--session-id", session_id, "--member", "1", *where)
            assert code == 0, out
            assert out.startswith("终端已开始放映「冬训第一课」，已签到 1 人")
            await terminal.wait_until(lambda: not terminal.session_running, timeout=30)

        code, out = await cli("status", *where[:4], "--status-port", "1")  # the daemon is stopped
        assert code == 0, out
        assert "daemon not running" in out and f"--item {sha}" in out
        assert session_id in out  # still listed from the stored catalog (run or not, the id is there)

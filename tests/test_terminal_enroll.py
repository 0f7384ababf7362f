"""Enrollment against a server that requires terminal tokens.

Before enrollment the server refuses the terminal. `yuanjiao-terminal enroll CODE`
(the real command, as its own process) trades the admin's one-time code for the
terminal id, a token and the signing key; afterwards the daemon, with nothing but its
data directory, sends the token, fetches the catalog and downloads the content, and
the pinned key is the one the enrollment gave.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import pytest

from terminal.daemon import Terminal
from tests.conftest import serve, server_config
from tests.terminal_helpers import REPO, TERMINAL_ID, assign, item_state, terminal_config, upload

pytestmark = pytest.mark.asyncio


async def test_enroll_then_sync_with_the_token(tmp_path: Path, clip: Path) -> None:
    async with serve(server_config(tmp_path), seed=True) as (running, http):
        content_id, sha = await upload(http, clip, "党课")
        await assign(http, content_id)
        tconfig = terminal_config(tmp_path, running.url)

        async with Terminal(tconfig) as terminal:
            async def refused() -> bool:
                condition = (await terminal.snapshot()).condition
                return "refused" in condition and "not enrolled" in condition
            await terminal.wait_until(refused, timeout=30)

        async with http.post(f"/api/v1/admin/terminals/{TERMINAL_ID}/enrollment", json={}) as r:
            assert r.status == 201, await r.text()
            code = (await r.json())["code"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "terminal", "enroll", code, "--server-url", running.url,
            "--data-dir", str(tconfig.data_dir), cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert TERMINAL_ID in out.decode()

        async with Terminal(tconfig) as terminal:
            await terminal.wait_until(item_state(terminal, sha), timeout=30)
            async with http.get("/api/v1/server") as r:
                assert (await terminal.snapshot()).server_fingerprint == (await r.json())["key_fingerprint"]


async def test_token_rotates_without_a_pause(tmp_path: Path, clip: Path) -> None:
    from shared.sqlite import Database
    from terminal.network.enroll import TOKEN
    from terminal.storage import db as q
    from terminal.storage.migrations import MIGRATIONS
    from tests.terminal_helpers import enroll

    async with serve(server_config(tmp_path), seed=True) as (running, http):
        content_id, sha = await upload(http, clip, "党课")
        tconfig = await enroll(http, terminal_config(tmp_path, running.url,
                                                     token_rotation_days=1e-9), running.url)
        async with Database(tconfig.db_path, MIGRATIONS) as database:
            first = await database.read(lambda c: q.get_kv(c, TOKEN))
        async with Terminal(tconfig) as terminal:
            async def rotated() -> bool:
                token = await terminal.db.read(lambda c: q.get_kv(c, TOKEN))
                return token is not None and token != first
            await terminal.wait_until(rotated, timeout=30)
            await assign(http, content_id)  # work after the rotation still goes through
            terminal.wake_sync()
            await terminal.wait_until(item_state(terminal, sha), timeout=30)
            second = await terminal.db.read(lambda c: q.get_kv(c, TOKEN))
        for token in (first, second):  # the old token keeps working through its grace day
            async with aiohttp.ClientSession(running.url) as t, t.get(
                    f"/api/v1/terminals/{TERMINAL_ID}/roster",
                    headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200

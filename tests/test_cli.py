"""The commands a county admin runs: `seed-demo` loads the sample county, roster and
videos; `serve` starts on loopback, answers, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import COUNTY, REPO, database_url, make_clip

pytestmark = pytest.mark.asyncio


def _env(data: Path, **more: str) -> dict[str, str]:
    """The environment of a command on `data`: the tests' database engine for it."""
    return {**os.environ, "YUANJIAO_DATABASE_URL": database_url(data), **more}


async def run(*args: str, data: Path | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=_env(data) if data is not None else None,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_seed_demo_then_serve(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    await asyncio.to_thread(make_clip, media / "a.mp4", 2)
    (media / "samples.json").write_text(json.dumps(
        [{"file": "a.mp4", "title": "样片", "kind": "lecture"}], ensure_ascii=False), encoding="utf-8")
    data = tmp_path / "data"
    code, out = await run("seed-demo", "--data-dir", str(data), "--county", str(COUNTY),
                          "--media", str(media), data=data)
    assert code == 0, out
    assert "新增终端站点 211 个" in out and "样片: 已添加" in out and "已安排 冬训第一课" in out
    found = re.search(r"console account: admin  密码 password: (\S+?)（", out)
    assert found, out
    password = found.group(1)
    code, again = await run("seed-demo", "--data-dir", str(data), "--county", str(COUNTY),
                            "--media", str(media), data=data)
    assert code == 0 and "新增终端站点 0 个" in again and "already held" in again
    assert "控制台账号" not in again  # made once, never printed again

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "serve", "--data-dir", str(data), "--port", "0",
        "--no-zeroconf", cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=_env(data, PYTHONUNBUFFERED="1"),
    )
    assert proc.stdout is not None
    try:
        url = ""
        while not url:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "the server exited before it listened"
            if m := re.search(r"on (http://127\.0\.0\.1:\d+)", line):
                url = m.group(1)
        async with aiohttp.ClientSession(url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.post("/api/v1/auth/login",
                                 json={"username": "admin", "password": password}) as r:
                assert r.status == 200
            async with http.get("/api/v1/admin/contents") as r:
                assert [c["title"] for c in await r.json()] == ["样片"]
            async with http.get("/api/v1/admin/fleet") as r:
                assert (await r.json())["total"] == 211
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_bad_settings_file(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text("colour = 1\n", encoding="utf-8")
    code, out = await run("serve", "--config", str(cfg))
    assert code == 2 and "colour" in out

"""Names and settings never crash start-up.

* Every setting is checked when the settings load: an impossible value (a port past
  65535, full-width digits, 0 for an interval, NaN, an interface that is no address, an
  unknown key or bad TOML in the file) is refused by the CLI with exit code 2 and one
  line naming the setting, never a traceback. The terminal's CLI does the same.
* mDNS instance labels are cut to fit one DNS label (63 bytes of UTF-8) on a character
  boundary, keeping the id part; the county's full official name (78 bytes) still
  starts the server, is advertised cut, and is shown whole by the API.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp
import pytest
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

from server.appkeys import SERVER_ID
from server.config import load_config
from server.runner import RunningServer
from shared import service
from shared.mdns import MAX_LABEL_BYTES, instance_label
from tests.conftest import REPO, server_config
from tests.test_zeroconf import LOOPBACK, Watcher

pytestmark = pytest.mark.asyncio
LONG_NAME = (REPO / "tests" / "field_cases" / "long_server_name.txt").read_text(encoding="utf-8").strip()


async def run(program: str, args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", program, *args, cwd=REPO, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(("env", "setting", "says"), [
    ({"YUANJIAO_PORT": "70000"}, "port", "from 0 to 65535"),
    ({"YUANJIAO_PORT": "８７５０"}, "port", "ASCII digits"),
    ({"YUANJIAO_PORT": "8²"}, "port", "ASCII digits"),
    ({"YUANJIAO_HEARTBEAT_INTERVAL": "0"}, "heartbeat_interval", "more than 0"),
    ({"YUANJIAO_FFPROBE_TIMEOUT": "nan"}, "ffprobe_timeout", "ASCII digits"),
    ({"YUANJIAO_MIN_FREE_BYTES": "-1"}, "min_free_bytes", "ASCII digits"),
    ({"YUANJIAO_ZEROCONF": "maybe"}, "zeroconf", "true or false"),
    ({"YUANJIAO_ZEROCONF_INTERFACES": "eth0"}, "zeroconf_interfaces", "not an IPv4 address"),
    ({"YUANJIAO_SERVER_NAME": "   "}, "server_name", "must not be empty"),
    ({"YUANJIAO_SERVER_NAME": "县\x07"}, "server_name", "control characters"),
    ({"YUANJIAO_TLS_PIN_SHA256": "abc"}, "tls_pin_sha256", "64 hex digits"),
])
async def test_impossible_setting_is_one_line(tmp_path: Path, env: dict[str, str], setting: str,
                                              says: str) -> None:
    code, out, err = await run("server", ["serve", "--data-dir", str(tmp_path), "--no-zeroconf",
                                          "--port", "0"] if setting != "port" else
                               ["serve", "--data-dir", str(tmp_path), "--no-zeroconf"], env)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"setting {setting} = " in lines[0] and says in lines[0]
    assert not (tmp_path / "yuanjiao.sqlite3").exists()


@pytest.mark.parametrize(("toml", "says"), [
    ("colour = 'red'\n", "setting colour"),
    ("port = 'x'\n", "setting port"),
    ("port = \n", "not valid TOML"),
    ("upload_expiry_hours = inf\n", "finite"),
])
async def test_settings_file_problems_are_one_line(tmp_path: Path, toml: str, says: str) -> None:
    file = tmp_path / "server.toml"
    file.write_text(toml, encoding="utf-8")
    code, _out, err = await run("server", ["serve", "--config", str(file), "--data-dir",
                                           str(tmp_path / "d"), "--no-zeroconf"], {})
    assert code == 2 and len(err.strip().splitlines()) == 1 and says in err, err


async def test_openssl_fingerprint_form_is_a_valid_pin() -> None:
    pin = ":".join(["AB"] * 32)
    assert load_config(env={"YUANJIAO_TLS_PIN_SHA256": pin}).tls_pin_sha256 == pin


@pytest.mark.parametrize(("env", "setting", "says"), [
    ({"YUANJIAO_TERMINAL_STATUS_PORT": "１"}, "status_port", "ASCII digits"),
    ({"YUANJIAO_TERMINAL_STATUS_PORT": "99999"}, "status_port", "from 0 to 65535"),
    ({"YUANJIAO_TERMINAL_HEARTBEAT_INTERVAL": "0"}, "heartbeat_interval", "more than 0"),
    ({"YUANJIAO_TERMINAL_OUTBOX_BATCH": "0"}, "outbox_batch", "more than 0"),
])
async def test_terminal_setting_is_one_line(tmp_path: Path, env: dict[str, str], setting: str,
                                            says: str) -> None:
    code, _out, err = await run("terminal", ["status", "--data-dir", str(tmp_path)], env)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"setting {setting} = " in err and says in err and "Traceback" not in err


async def test_label_cut_on_a_character_boundary() -> None:
    assert len(LONG_NAME.encode()) == 78
    label = instance_label(LONG_NAME, "a1b2c3d4")
    raw = label.encode("utf-8")
    assert len(raw) <= MAX_LABEL_BYTES
    assert label.endswith(" a1b2c3d4")
    head = label.removesuffix(" a1b2c3d4")
    assert head and LONG_NAME.startswith(head)
    assert instance_label("县远教内容服务器", "a1b2c3d4") == "县远教内容服务器 a1b2c3d4"
    for name in ("😀" * 30, "a" * 100, "é" * 40):
        cut = instance_label(name, "ffff0000")
        assert len(cut.encode()) <= MAX_LABEL_BYTES and cut.endswith(" ffff0000")


async def test_long_name_server_starts_and_advertises(tmp_path: Path) -> None:
    config = server_config(tmp_path, zeroconf=True, zeroconf_interfaces=("127.0.0.1",),
                           server_name=LONG_NAME)
    async with AsyncZeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only) as azc:
        watcher = Watcher()
        browser = AsyncServiceBrowser(azc.zeroconf, [service.SERVER_SERVICE_TYPE], handlers=[watcher])
        try:
            async with RunningServer(config) as running:
                server_id = running.app[SERVER_ID]
                name = ""
                while server_id[:8] not in name:
                    name = await asyncio.wait_for(watcher.added.get(), 20)
                label = name.removesuffix("." + service.SERVER_SERVICE_TYPE)
                assert len(label.encode("utf-8")) <= MAX_LABEL_BYTES
                assert LONG_NAME.startswith(label.rsplit(" ", 1)[0])
                async with aiohttp.ClientSession() as http, \
                        http.get(f"http://127.0.0.1:{running.port}/api/v1/server") as r:
                    assert (await r.json())["name"] == LONG_NAME
        finally:
            await browser.async_cancel()

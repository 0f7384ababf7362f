"""Two-way USB bundles, on a real FAT32 stick (an image mounted with FUSE `fusefat`).

The round trip: the county writes a bundle for a township onto a stick that fills up
half-way (the copy is cut: the report says what is missing, whole parts stay); a
terminal with no network takes in what verifies from that stick — the whole film
becomes ready, the other keeps the verified prefix it got — and lists what is missing;
written again on the same stick with room made, only the rest is copied; the terminal
takes in the rest, plays a session, and writes its attendance and state back, signed by
its own key; a second terminal does the same through its running daemon. At the county
the stick is imported twice: each attendance record is stored once, both terminals show
their last contact by stick.

A tampered stick imports nothing of what was changed: a changed byte in a film leaves
that film not ready (the other still imports), a catalog signed by another key is
refused (nothing new imports), returns signed by another terminal or altered are refused
(nothing of them is stored). Skipped, with the reason, where FUSE is unavailable.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, text

from server.appkeys import DB
from server.config import ServerConfig
from server.signer import Signer
from shared import bundle as b
from shared.protocol import SignedCatalog
from terminal.config import TerminalConfig
from terminal.daemon import Terminal
from terminal.playback.sessions import SessionSpec
from terminal.storage import db as tq
from tests.conftest import make_clip, serve, server_config
from tests.terminal_helpers import REPO, enroll, import_roster, terminal_config, upload
from tests.usb_helpers import exfat_stick, fat_stick, fill_leaving

pytestmark = pytest.mark.asyncio
P = 16 * 1024
PART = 4 * P  # small parts, so a film spans several files on the stick
TOWNSHIP = "140121100"
TA, TB = "T140121100001", "T140121100002"
OFFLINE = "http://127.0.0.1:9"  # nothing listens there: these villages have no link


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("films")
    one = make_clip(d / "one.mp4", 2, "480x360", 440, "testsrc2")
    two = make_clip(d / "two.mp4", 4, "480x360", 660, "testsrc2")
    assert one.stat().st_size > 2 * PART and two.stat().st_size > 2 * PART
    return one, two


def _config(tmp_path: Path) -> ServerConfig:
    """Small pieces; sticks are mounted under tmp_path here."""
    return server_config(tmp_path, piece_size=P, usb_mount_roots=(str(tmp_path),))


async def _assign_township(http: aiohttp.ClientSession, content_id: str) -> None:
    async with http.post("/api/v1/admin/assignments",
                         json={"content_id": content_id, "scope": "unit", "target": TOWNSHIP}) as r:
        assert r.status == 201, await r.text()


async def _two_films_for_the_township(http: aiohttp.ClientSession, one: Path, two: Path
                                      ) -> tuple[str, str]:
    """Both films uploaded and assigned to the township, its roster imported; returns
    their sha256s."""
    id1, sha1 = await upload(http, one, "专题片：山村新貌")
    id2, sha2 = await upload(http, two, "农业实用技术：核桃")
    await _assign_township(http, id1)
    await _assign_township(http, id2)
    await import_roster(http)
    return sha1, sha2


async def _offline_terminal(http: aiohttp.ClientSession, base: Path, terminal_id: str,
                            server_url: str) -> TerminalConfig:
    """Enrolled on install day (online), given its village's roster then, and from then on
    without a link."""
    tconfig = terminal_config(base, OFFLINE, terminal_id=terminal_id)
    await enroll(http, tconfig, server_url, keep_address=False)
    from shared.protocol import Roster
    from shared.sqlite import Database
    from terminal.storage.migrations import MIGRATIONS

    async with Database(tconfig.db_path, MIGRATIONS) as database:
        token = await database.read(lambda c: tq.get_kv(c, "terminal_token"))
        async with aiohttp.ClientSession(server_url) as plain, plain.get(
                f"/api/v1/terminals/{terminal_id}/roster",
                headers={"Authorization": f"Bearer {token}"}) as r:
            roster = msgspec.json.decode(await r.read(), type=Roster)
        await database.write(lambda c: tq.replace_roster(c, roster.members))
    return tconfig


async def _write(http: aiohttp.ClientSession, stick: Path, **choice: Any) -> dict[str, Any]:
    body = {"directory": str(stick), "part_size": PART, **choice}
    async with http.post("/api/v1/admin/bundles", json=body) as r:
        assert r.status == 200, await r.text()
        report: dict[str, Any] = await r.json()
        return report


async def _returns(http: aiohttp.ClientSession, stick: Path) -> dict[str, Any]:
    async with http.post("/api/v1/admin/bundles/returns", json={"directory": str(stick)}) as r:
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body


async def _exchange(tconfig: TerminalConfig, stick: Path) -> Any:
    terminal = Terminal(tconfig)
    await terminal.async_start(background=False)  # no link, no loops: a box with no network
    try:
        return await terminal.usb_exchange(stick)
    finally:
        await terminal.async_close()


async def _state(tconfig: TerminalConfig, sha: str) -> str:
    from shared.sqlite import Database
    from terminal.storage.migrations import MIGRATIONS

    async with Database(tconfig.db_path, MIGRATIONS) as database:
        row = await database.read(lambda c: tq.item(c, sha))
    return row.state if row else "unknown"


async def _a_member(tconfig: TerminalConfig) -> str:
    from shared.sqlite import Database
    from terminal.storage.migrations import MIGRATIONS

    async with Database(tconfig.db_path, MIGRATIONS) as database:
        return (await database.read(tq.roster))[0].member_no


def _stored(conn: Connection, record_id: str) -> int:
    return int(conn.execute(text("SELECT COUNT(*) FROM attendance WHERE record_id = :id"),
                            {"id": record_id}).scalar_one())


async def _usb_cli(tconfig: TerminalConfig, stick: Path) -> tuple[int, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "terminal", "usb", "import", str(stick), "--json",
        "--data-dir", str(tconfig.data_dir), "--status-port", "1", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode in (0, 3), err.decode()
    return proc.returncode or 0, msgspec.json.decode(out)


async def test_round_trip_on_a_fat32_stick(tmp_path: Path, films: tuple[Path, Path]) -> None:
    one, two = films
    config = _config(tmp_path)
    with fat_stick(tmp_path) as fat:
        stick = fat.mountpoint
        async with serve(config, seed=True) as (running, http):
            sha1, sha2 = await _two_films_for_the_township(http, one, two)
            ta = await _offline_terminal(http, tmp_path / "a", TA, running.url)
            tb = await _offline_terminal(http, tmp_path / "b", TB, running.url)

            # 1. the stick has room for the first film and a little more: the copy is cut
            await asyncio.to_thread(fill_leaving, stick, one.stat().st_size + 96 * 1024)
            cut = await _write(http, stick, township=TOWNSHIP)
            assert set(cut["terminals"]) == {TA, TB}
            assert cut["complete"] is False and cut["missing"] == [sha2]
            assert not list(stick.glob("yuanjiao/items/*/*.tmp"))  # nothing half-written left
            await asyncio.to_thread(fat.unplug)

            # 2. at village A (no network): the whole film imports, the other is listed missing
            await asyncio.to_thread(fat.plug)
            code, first = await _usb_cli(ta, stick)
            assert code == 3 and first["catalog"] == "applied"
            assert first["imported"] == [sha1] and sha2 in first["missing"]
            assert await _state(ta, sha1) == "ready" and await _state(ta, sha2) != "ready"
            partial = first["missing"][sha2]
            assert partial % P == 0  # only whole verified pieces are kept

            # 3. back at the county: room made, written again; only the rest is copied
            await asyncio.to_thread((stick / "filler.bin").unlink)
            again = await _write(http, stick, township=TOWNSHIP)
            assert again["complete"] is True and again["missing"] == []
            assert again["parts_kept"] > 0
            assert again["bytes_written"] <= two.stat().st_size
            await asyncio.to_thread(fat.unplug)

            # 4. village A again: the rest imports; a session is held; returns written
            await asyncio.to_thread(fat.plug)
            report = await _exchange(ta, stick)
            assert report.imported == [sha2] and report.complete
            terminal = Terminal(ta)
            await terminal.async_start(background=False)
            try:
                held = await terminal.run_session(SessionSpec("冬训：U 盘送来的课", [sha1, sha2]), ["1"])
                assert not held.skipped
            finally:
                await terminal.async_close()
            report = await _exchange(ta, stick)
            assert report.records_written == 1 and report.returns_error == ""

            # 5. village B takes the stick through its running daemon (told by the TV/CLI)
            async with Terminal(tb) as daemon_b:
                answer = await daemon_b.control("usb", {"directory": str(stick)})
                assert answer["complete"] is True
                assert sorted(answer["usb"]["imported"]) == sorted([sha1, sha2])
                held_b = await daemon_b.run_session(SessionSpec("冬训", [sha1]), [await _a_member(tb)])
                answer = await daemon_b.control("usb", {"directory": str(stick)})
                assert answer["usb"]["records_written"] == 1
            await asyncio.to_thread(fat.unplug)

            # 6. the county imports the stick, twice: each record once
            await asyncio.to_thread(fat.plug)
            first_read = await _returns(http, stick)
            assert first_read["refused"] == {}
            assert first_read["records_new"] == 2 and set(first_read["terminals"]) == {TA, TB}
            second_read = await _returns(http, stick)
            assert second_read["records_new"] == 0 and second_read["refused"] == {}
            assert second_read["already_imported"] == second_read["files"] == first_read["files"]
            for record_id in (held.record_id, held_b.record_id):
                assert await running.app[DB].read(functools.partial(_stored, record_id=record_id)) == 1
            async with http.get("/api/v1/admin/fleet") as r:
                fleet = {t["id"]: t for t in (await r.json())["terminals"]}
            assert fleet[TA]["last_usb_contact"] and fleet[TB]["last_usb_contact"]
            assert fleet[TA]["online"] is False  # a stick is not a link
            assert fleet[TA]["last_usb_contact"] is not None
            assert fleet[TB]["ready_items"] == 2  # its state came back on the stick


async def test_a_tampered_stick_imports_nothing_of_what_was_changed(
    tmp_path: Path, films: tuple[Path, Path],
) -> None:
    one, two = films
    stick = tmp_path / "stick"
    stick.mkdir()
    async with serve(_config(tmp_path), seed=True) as (running, http):
        sha1, sha2 = await _two_films_for_the_township(http, one, two)
        ta = await _offline_terminal(http, tmp_path / "a", TA, running.url)
        tb = await _offline_terminal(http, tmp_path / "b", TB, running.url)
        written = await _write(http, stick, terminals=[TA, TB])
        assert written["complete"] is True

        # a catalog signed by another key: refused, nothing imports
        forged_stick = tmp_path / "forged"
        await asyncio.to_thread(shutil.copytree, stick, forged_stick)
        path = b.catalog_path(forged_stick, TA)
        envelope = msgspec.json.decode(path.read_bytes(), type=SignedCatalog)
        rogue = Signer(Ed25519PrivateKey.generate())
        raw = bytes(envelope.catalog)
        path.write_bytes(msgspec.json.encode(SignedCatalog(
            catalog=msgspec.Raw(raw), signature=rogue.sign(raw), key_fingerprint=rogue.fingerprint)))
        report = await _exchange(ta, forged_stick)
        assert report.catalog.startswith("refused") and report.imported == []
        assert await _state(ta, sha1) == "unknown"

        # one changed byte in the second film: the first imports, the second stays out
        part = b.part_path(stick, sha2, 1)
        data = bytearray(part.read_bytes())
        data[P + 5] ^= 0x01
        part.write_bytes(bytes(data))
        report = await _exchange(ta, stick)
        assert report.catalog == "applied"
        assert report.imported == [sha1] and sha2 in report.damaged
        assert await _state(ta, sha2) != "ready"
        assert not (ta.cache_dir / sha2).exists()
        kept = (ta.cache_dir / f"{sha2}.part").stat().st_size
        assert kept == PART + P  # every verified piece before the changed one, nothing after

        # returns: B holds a session and writes; its file copied under A's name is refused,
        # and an altered copy of B's own is refused; nothing of them is stored
        await _exchange(tb, stick)
        terminal = Terminal(tb)
        await terminal.async_start(background=False)
        try:
            held = await terminal.run_session(SessionSpec("冬训", [sha1]), [await _a_member(tb)])
        finally:
            await terminal.async_close()
        report_b = await _exchange(tb, stick)
        assert report_b.records_written == 1
        b_files = sorted(b.returns_dir(stick, TB).glob("*-attendance-*.json"))
        assert b_files
        tampered = tmp_path / "tampered"
        (b.returns_dir(tampered, TA)).mkdir(parents=True)
        (b.returns_dir(tampered, TB)).mkdir(parents=True)
        shutil.copy(b_files[-1], b.returns_dir(tampered, TA) / "copied-attendance.json")
        altered = b_files[-1].read_bytes().replace(b'"watched_seconds":', b'"watched_seconds":1', 1)
        assert altered != b_files[-1].read_bytes()
        (b.returns_dir(tampered, TB) / "altered-attendance.json").write_bytes(altered)
        result = await _returns(http, tampered)
        assert set(result["refused"]) == {f"returns/{TA}/copied-attendance.json",
                                          f"returns/{TB}/altered-attendance.json"}
        assert result["records_new"] == 0
        assert await running.app[DB].read(lambda c: _stored(c, held.record_id)) == 0

        # the genuine stick still imports B's record, once
        result = await _returns(http, stick)
        assert result["refused"] == {} and result["records_new"] == 1
        assert await running.app[DB].read(lambda c: _stored(c, held.record_id)) == 1


async def test_bundle_choices_and_refusals(tmp_path: Path, films: tuple[Path, Path]) -> None:
    """Bad input gets a precise status and a message to act on; no terminal chosen, an
    unknown directory, a relative path, a non-enrolled terminal."""
    async with serve(_config(tmp_path), seed=True) as (_running, http):
        stick = tmp_path / "stick"
        stick.mkdir()
        async with http.post("/api/v1/admin/bundles", json={"directory": str(stick)}) as r:
            assert r.status == 422 and (await r.json())["error"]["code"] == "no_terminals"
        async with http.post("/api/v1/admin/bundles",
                             json={"directory": "stick", "terminals": [TA]}) as r:
            error = (await r.json())["error"]  # the document says: an absolute path
            assert r.status == 422 and error["code"] == "invalid_body" and "directory" in error["message"]
        for outside in ("/etc", str(tmp_path), str(tmp_path / ".." / "elsewhere")):
            async with http.post("/api/v1/admin/bundles/returns", json={"directory": outside}) as r:
                assert r.status == 422, outside
                assert (await r.json())["error"]["code"] == "not_a_usb_folder"
        async with http.post("/api/v1/admin/bundles",
                             json={"directory": str(tmp_path / "nowhere"), "terminals": [TA]}) as r:
            assert r.status == 422 and (await r.json())["error"]["code"] == "bundle_refused"
        async with http.post("/api/v1/admin/bundles",
                             json={"directory": str(stick), "terminals": [TA]}) as r:
            body = await r.json()
            assert r.status == 422 and "not enrolled" in body["error"]["message_en"]
        async with http.post("/api/v1/enroll", json={"code": "1", "public_key": "bm90IGEga2V5"}) as r:
            assert r.status == 422 and (await r.json())["error"]["code"] == "bad_public_key"


async def test_server_cli_writes_and_imports(tmp_path: Path, films: tuple[Path, Path]) -> None:
    """`yuanjiao-server bundle write/import` do what the console does, on the data dir."""
    one, _two = films
    config = _config(tmp_path)
    async with serve(config, seed=True) as (running, http):
        content_id, sha = await upload(http, one, "专题片：山村新貌")
        await _assign_township(http, content_id)
        ta = await _offline_terminal(http, tmp_path / "a", TA, running.url)
    stick = tmp_path / "cli-stick"
    stick.mkdir()

    async def server_cli(*args: str) -> tuple[int, dict[str, Any]]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server", "bundle", *args, str(stick),
            "--data-dir", str(config.data_dir), cwd=REPO,
            env={**os.environ, "YUANJIAO_DATABASE_URL": config.database_url},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode is not None, err
        return proc.returncode, msgspec.json.decode(out) if out else {}

    code, written = await server_cli("write", "--terminal", TA, "--part-size", str(PART))
    assert code == 0 and written["terminals"] == [TA] and written["complete"] is True
    assert written["parts_written"] == -(-one.stat().st_size // PART)
    code, again = await server_cli("write", "--terminal", TA, "--part-size", str(PART))
    assert code == 0 and again["parts_written"] == 0 and again["parts_kept"] == written["parts_written"]

    report = await _exchange(ta, stick)
    assert report.imported == [sha] and report.records_written == 0
    code, taken = await server_cli("import")
    assert code == 0 and taken["states"] == 1 and taken["refused"] == {}
    code, taken = await server_cli("import")
    assert code == 0 and taken["already_imported"] == taken["files"] == 1


async def test_round_trip_on_an_exfat_stick(tmp_path: Path, films: tuple[Path, Path]) -> None:
    """The same layout on exFAT (loop device + exfat-fuse): out, session, back, twice."""
    one, two = films
    with exfat_stick(tmp_path) as stick_dev:
        stick = stick_dev.mountpoint
        async with serve(_config(tmp_path), seed=True) as (running, http):
            sha1, sha2 = await _two_films_for_the_township(http, one, two)
            ta = await _offline_terminal(http, tmp_path / "a", TA, running.url)
            written = await _write(http, stick, offline=True)
            assert TA in written["terminals"] and written["complete"] is True
            await asyncio.to_thread(stick_dev.unplug)
            await asyncio.to_thread(stick_dev.plug)
            report = await _exchange(ta, stick)
            assert sorted(report.imported) == sorted([sha1, sha2])
            terminal = Terminal(ta)
            await terminal.async_start(background=False)
            try:
                held = await terminal.run_session(SessionSpec("冬训", [sha2]), [await _a_member(ta)])
            finally:
                await terminal.async_close()
            assert (await _exchange(ta, stick)).records_written == 1
            await asyncio.to_thread(stick_dev.unplug)
            await asyncio.to_thread(stick_dev.plug)
            for expected_new in (1, 0):
                taken = await _returns(http, stick)
                assert taken["records_new"] == expected_new and taken["refused"] == {}
            assert await running.app[DB].read(lambda c: _stored(c, held.record_id)) == 1

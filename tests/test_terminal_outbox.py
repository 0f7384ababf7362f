"""Attendance reaches the server exactly once in effect.

* With the server down, sessions are played and thousands of records pile up in the
  outbox; the terminal keeps retrying with backoff. When the server returns (same data,
  same port) the backlog drains in bounded batches and every record is stored exactly
  once; a record delivered again (as after a lost acknowledgement) is acknowledged as a
  duplicate and not counted twice.
* A record id the server already holds with different contents is held on the
  terminal (kept, not deleted, shown in the status with the server's words); the rest
  of its batch is delivered. Nothing is held for good: held records are offered again
  after a backoff, and the moment the server accepts them they are delivered.
* A batch refused whole (one record over the attendee limit) is sent record by record:
  the one record is held, the others are delivered.
* A power cut in the middle of a session (the `session` command killed with SIGKILL)
  loses at most the last few seconds: on the next start the open record is closed with
  its last saved values and delivered.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import uuid
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import Connection, text

from server.appkeys import DB
from server.runner import RunningServer
from shared.timeutil import to_db, utcnow
from terminal.daemon import Terminal
from terminal.playback.sessions import SessionSpec
from terminal.storage import db as q
from tests.conftest import serve, server_config
from tests.terminal_helpers import (
    REPO,
    TERMINAL_ID,
    assign,
    backlog_empty,
    enroll,
    eventually,
    import_roster,
    item_state,
    member_record,
    terminal_config,
    upload,
)

pytestmark = pytest.mark.asyncio
PILE = 2500


def _pile(conn: sqlite3.Connection) -> None:
    """Weeks of records, written as the recorder writes them."""
    items = '[{"sha256":"' + "a" * 64 + '","watched_seconds":61.0}]'
    for i in range(PILE):
        when = to_db(utcnow())
        rid = uuid.uuid4().hex
        q.open_record(conn, rid, None, f"补录 {i}", when, '["3"]')
        q.save_record(conn, rid, when, items, '["3","4"]', close=True)


async def _server_counts(running: RunningServer) -> tuple[int, int]:
    def count(c: Connection) -> tuple[int, int]:
        row = c.execute(text("SELECT COUNT(*), COUNT(DISTINCT record_id) FROM attendance "
                             "WHERE terminal_id = :id"), {"id": TERMINAL_ID}).one()
        return int(row[0]), int(row[1])
    return await running.app[DB].read(count)


async def test_server_down_then_every_record_arrives_once(tmp_path: Path, clip: Path) -> None:
    config = server_config(tmp_path)
    async with serve(config, seed=True) as (running, http):
        content_id, sha = await upload(http, clip, "党课")
        await assign(http, content_id)
        await import_roster(http)
        port = running.port
        tconfig = terminal_config(tmp_path, f"http://127.0.0.1:{port}", outbox_batch=400)
        await enroll(http, tconfig, running.url)
    # the server is gone for a moment; the terminal starts from the configured URL
    async with serve(config.replace(port=port)) as (running, http), Terminal(tconfig) as terminal:
        await terminal.wait_until(item_state(terminal, sha), timeout=30)
        await running.async_close()  # the link drops

        results = [await terminal.run_session(SessionSpec(f"第{n}课", [sha]), ["1", "2"])
                   for n in range(3)]
        await terminal.db.write(_pile)
        assert (await terminal.snapshot()).outbox_backlog == PILE + 3
        terminal.wake_outbox()
        await terminal.wait_until(lambda: terminal.link is not None and terminal.link.client is None,
                                  timeout=10)
        # a lost acknowledgement, later: the first record will be delivered twice
        first = await terminal.db.read(lambda c: q.record(c, results[0].record_id))
        assert first is not None

        async with serve(config.replace(port=port)) as (back, http2):
            terminal.wake_outbox()
            await terminal.wait_until(backlog_empty(terminal), timeout=60)
            assert await _server_counts(back) == (PILE + 3, PILE + 3)
            assert terminal.last_delivery is not None
            assert terminal.last_delivery.batches >= PILE // 400

            def again(c: sqlite3.Connection) -> None:
                c.execute("INSERT INTO records (record_id, seq, session_id, title, started_at, "
                          "ended_at, items, attendees, state) VALUES (?,?,?,?,?,?,?,?,'closed')",
                          (first.record_id, first.seq, first.session_id, first.title,
                           first.started_at, first.ended_at, first.items, first.attendees))
            await terminal.db.write(again)
            terminal.wake_outbox()
            await terminal.wait_until(backlog_empty(terminal), timeout=30)
            assert terminal.last_delivery.duplicates == 1
            assert await _server_counts(back) == (PILE + 3, PILE + 3)

            record = await member_record(http2, "1")
            assert record["sessions"] == 3
            assert record["watched_seconds"] == pytest.approx(15.0, abs=1.5)


async def test_conflicting_record_is_quarantined_and_the_rest_delivered(
    tmp_path: Path, clip: Path,
) -> None:
    async with serve(server_config(tmp_path), seed=True) as (running, http):
        content_id, sha = await upload(http, clip, "党课")
        await assign(http, content_id)
        async with Terminal(await enroll(http, terminal_config(tmp_path, running.url), running.url)
                            ) as terminal:
            await terminal.wait_until(item_state(terminal, sha), timeout=30)
            done = await terminal.run_session(SessionSpec("第一课", [sha]), ["1"])
            await terminal.wait_until(backlog_empty(terminal), timeout=30)

            # the same record id again, saying something else, among two fresh records
            def rewrite(c: sqlite3.Connection) -> None:
                now = to_db(utcnow())
                c.execute("INSERT INTO records (record_id, seq, started_at, ended_at, items, attendees, "
                          "state) VALUES (?, 1000, ?, ?, '[]', '[\"9\"]', 'closed')",
                          (done.record_id, now, now))
                for _ in range(2):
                    rid = uuid.uuid4().hex
                    q.open_record(c, rid, None, "补录", now, '["1"]')
                    q.save_record(c, rid, now, "[]", '["1"]', close=True)
            await terminal.db.write(rewrite)
            terminal.wake_outbox()
            await terminal.wait_until(backlog_empty(terminal), timeout=30)
            snap = await terminal.snapshot()
            assert snap.outbox_quarantined == 1
            kept = await terminal.db.read(lambda c: q.record(c, done.record_id))
            assert kept is not None and kept.state == "quarantined"
            assert await _server_counts(running) == (3, 3)


async def test_power_cut_mid_session_loses_only_seconds(tmp_path: Path, clip: Path) -> None:
    async with serve(server_config(tmp_path), seed=True) as (running, http):
        content_id, sha = await upload(http, clip, "党课")
        await assign(http, content_id)
        await import_roster(http)
        tconfig = await enroll(http, terminal_config(tmp_path, running.url), running.url)
        async with Terminal(tconfig) as terminal:
            await terminal.wait_until(item_state(terminal, sha), timeout=30)

        # the site manager's `session` command, playing at normal speed
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "terminal", "session", "--data-dir", str(tconfig.data_dir),
            "--terminal-id", TERMINAL_ID, "--status-port", "1", "--headless", "--rate", "1",
            "--item", sha, "--member", "1", "--member", "2", cwd=REPO,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "YUANJIAO_TERMINAL_SESSION_SAVE_SECONDS": "0.2"},
        )

        def saved() -> float:
            c = sqlite3.connect(tconfig.db_path)
            try:
                row = c.execute("SELECT items FROM records WHERE state = 'open'").fetchone()
            finally:
                c.close()
            items = msgspec.json.decode(row[0]) if row else []
            return float(items[0]["watched_seconds"]) if items else 0.0

        try:
            await eventually(lambda: asyncio.to_thread(saved), timeout=30)
            await eventually(lambda: _at_least(saved, 1.5), timeout=30)
        finally:
            if proc.returncode is None:
                proc.kill()  # SIGKILL: the power is cut
            await proc.wait()
        last_saved = await asyncio.to_thread(saved)
        assert 1.5 <= last_saved < 5.0

        async with Terminal(tconfig) as terminal:  # power back: the open record is closed
            await terminal.wait_until(backlog_empty(terminal), timeout=30)
        record = await member_record(http, "2")
        assert record["sessions"] == 1
        assert record["watched_seconds"] == pytest.approx(last_saved, abs=0.06)  # the report rounds to 0.1 s


async def _at_least(read: object, value: float) -> bool:
    return bool(await asyncio.to_thread(read) >= value)  # type: ignore[arg-type]


async def test_held_records_go_again_until_accepted(tmp_path: Path) -> None:
    async with serve(server_config(tmp_path), seed=True) as (running, http):
        tconfig = await enroll(http, terminal_config(tmp_path, running.url, held_retry_seconds=0.3),
                               running.url)
        async with Terminal(tconfig) as terminal:
            def write(c: sqlite3.Connection, rid: str, people: str) -> None:
                now = to_db(utcnow())
                q.open_record(c, rid, None, "补录", now, people)
                q.save_record(c, rid, now, '[{"sha256":"' + "a" * 64 + '","watched_seconds":60.0}]',
                              people, close=True)

            first = uuid.uuid4().hex
            await terminal.db.write(lambda c: write(c, first, '["1"]'))
            terminal.wake_outbox()
            await terminal.wait_until(backlog_empty(terminal), timeout=30)

            # the same id again saying something else, a record over the attendee limit, and
            # a good one: the conflict and the oversized record are held, the good one goes
            crowd, good = uuid.uuid4().hex, uuid.uuid4().hex
            many = msgspec.json.encode([str(n) for n in range(1, 1202)]).decode()

            def second_round(c: sqlite3.Connection) -> None:
                c.execute("DELETE FROM kv WHERE key = 'last_seq'")
                now = to_db(utcnow())
                c.execute("INSERT INTO records (record_id, seq, started_at, ended_at, items, "
                          "attendees, state) VALUES (?, 1000, ?, ?, '[]', '[\"9\"]', 'closed')",
                          (first, now, now))
                write(c, crowd, many)
                write(c, good, '["2"]')
            await terminal.db.write(second_round)
            terminal.wake_outbox()

            async def held_two() -> bool:
                snap = await terminal.snapshot()
                return snap.outbox_quarantined == 2 and snap.outbox_backlog == 0
            await terminal.wait_until(held_two, timeout=30)
            snap = await terminal.snapshot()
            assert snap.outbox_problem  # the server's words, for the site manager
            assert snap.condition.startswith("2 record(s) refused by the server")
            assert snap.outbox_retry_seconds is not None
            assert await _server_counts(running) == (2, 2)  # first and good

            # the county repairs the server's copy; the held record goes at the next retry
            def repair(c: Connection) -> None:
                aid = c.execute(text("SELECT id FROM attendance WHERE record_id = :rid"),
                                {"rid": first}).scalar_one()
                for table in ("attendance_members", "attendance_items"):
                    c.execute(text(f"DELETE FROM {table} WHERE attendance_id = :aid"), {"aid": aid})
                c.execute(text("DELETE FROM attendance WHERE id = :aid"), {"aid": aid})
            await running.app[DB].write(repair)

            async def only_crowd_held() -> bool:
                return await terminal.db.read(lambda c: q.record(c, first)) is None
            await terminal.wait_until(only_crowd_held, timeout=30)
            kept = await terminal.db.read(lambda c: q.record(c, crowd))
            assert kept is not None and kept.state == "quarantined"
            assert "1000" in kept.refusal
            assert await _server_counts(running) == (2, 2)

            def stored(c: Connection) -> str:
                return ",".join(c.execute(text(
                    "SELECT am.member_no FROM attendance_members am "
                    "JOIN attendance a ON a.id = am.attendance_id "
                    "WHERE a.record_id = :rid ORDER BY am.member_no"), {"rid": first}).scalars())
            assert await running.app[DB].read(stored) == "9"  # the held version, now accepted

"""Attendance survives `kill -9` of the county server: acknowledged means stored, once.

Contract:
* a record whose id the server listed in an acknowledgement is in the database after the
  server process is killed with SIGKILL at any moment, exactly once, with its items and
  attendees whole (no child row without its record, nothing doubled), and the database
  passes the engine's own consistency check;
* the server starts again on the same data after every kill, and terminals that send
  again what was not acknowledged (the same record ids, re-batched with newer records, as
  the outbox does) end with every record stored exactly once: nothing lost, no
  duplicates, nothing stored that no terminal sent;
* a batch committed whose answer was lost (the process died first, or the answer went
  astray) is answered "already held" when sent again: the records counted new across
  all the answers the terminals saw, plus those committed in answers lost to a kill,
  are exactly the records stored;
* nothing in all this is a 5xx other than the connection guard's 503, and no record is
  ever refused as a conflict.

Real components: `python -m server serve` as its own process on 127.0.0.1 and port 0
(the clients follow the new address after each start, as terminals following mDNS do),
the county and roster imported and an admin made with the server's CLI, 40 terminal
points enrolled through the API, each speaking with the terminal's own `ServerClient`.
Ten kills at moments drawn from a seeded random generator (the seed is printed; set
YUANJIAO_FAULT_SEED to replay one): a kill comes after the k-th batch acknowledged since
the last start, while the other terminals' batches are in flight.

The database is named in one place, `database_under_test()`: today the SQLite file in
the data directory, read directly while the server is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import aiohttp
import pytest
import sqlalchemy
import sqlalchemy.pool

from server.db import normalise_url
from shared.protocol import AttendanceBatch, AttendanceRecord, WatchedItem
from terminal.errors import ServerRefused, ServerUnreachable
from terminal.network.client import ServerClient
from tests.conftest import COUNTY, REPO, database_url

pytestmark = pytest.mark.asyncio

SEED = int(os.environ.get("YUANJIAO_FAULT_SEED", "20261130"))
TERMINALS = 40
KILLS = 10
BATCH = 8  # records per batch at most; small, so a run has many batches to cut through
PER_TERMINAL = 200  # records a terminal makes at most (the admin API lists up to 200)
PER_START = 16  # records a terminal makes per server start at most: a slow run makes no more
KILL_AFTER = (1, 50)  # a kill comes after this many acknowledged batches since the start
LOST_ANSWERS = 0.05  # share of acknowledgements the terminal never sees
SHAS = ("a" * 64, "b" * 64, "c" * 64)
START_TIMEOUT = 30.0
DRAIN_TIMEOUT = 40.0
WHOLE_TEST = 150.0


# --- the database under test: the one place that names the engine ---------------------


@dataclass(frozen=True)
class StoredRecord:
    terminal_id: str
    record_id: str
    seq: int
    watched_seconds: float
    items: int
    item_seconds: float
    attendees: int


@dataclass(frozen=True)
class DatabaseUnderTest:
    """Where the server under test keeps its data, and how this test reads it directly.

    `url` names the database; `server_env` are the settings the server process needs to
    use it (none for SQLite: the data directory decides).
    """

    url: str
    server_env: dict[str, str]

    def stored(self) -> tuple[list[StoredRecord], int, str]:
        """Every attendance row with its child rows counted, the child rows that have no
        attendance row (must be 0), and the engine's own consistency check ("ok").
        Blocking: call it on a thread."""
        if not self.url.startswith("sqlite:///"):
            return _stored_postgresql(self.url)
        # Read-only: no checkpoint on close, so the next start recovers the WAL itself.
        path = Path(self.url.removeprefix("sqlite:///"))
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            rows, orphans = _stored(conn)
            integrity = "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check"))
            return rows, orphans, integrity
        finally:
            conn.close()


def database_under_test(data_dir: Path) -> DatabaseUnderTest:
    """The engine the server runs on in this test. A PostgreSQL mode
    (YUANJIAO_TEST_DATABASE=postgresql) plugs in here: its URL, passed to the server as
    the `database_url` setting, and `DatabaseUnderTest.stored` reading through it."""
    url = database_url(data_dir)
    if url:
        return DatabaseUnderTest(url=url, server_env={"YUANJIAO_DATABASE_URL": url})
    return DatabaseUnderTest(url=f"sqlite:///{data_dir / 'yuanjiao.sqlite3'}", server_env={})


def _stored_postgresql(url: str) -> tuple[list[StoredRecord], int, str]:
    """The same reads in one REPEATABLE READ snapshot; PostgreSQL checks its own
    constraints on every write, so there is no separate integrity check to run."""
    engine = sqlalchemy.create_engine(normalise_url(url), isolation_level="REPEATABLE READ",
                                      poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn, conn.begin():
            rows = [StoredRecord(*r) for r in conn.execute(sqlalchemy.text(_STORED_SQL))]
            orphans = int(conn.execute(sqlalchemy.text(_ORPHANS_SQL)).scalar_one())
        return rows, orphans, "ok"
    finally:
        engine.dispose()


_STORED_SQL = (
    "SELECT a.terminal_id, a.record_id, a.seq, a.watched_seconds, "
    "(SELECT COUNT(*) FROM attendance_items i WHERE i.attendance_id = a.id), "
    "(SELECT COALESCE(SUM(i.watched_seconds), 0) FROM attendance_items i "
    " WHERE i.attendance_id = a.id), "
    "(SELECT COUNT(*) FROM attendance_members m WHERE m.attendance_id = a.id) "
    "FROM attendance a"
)
_ORPHANS_SQL = (
    "SELECT (SELECT COUNT(*) FROM attendance_items i WHERE NOT EXISTS "
    "(SELECT 1 FROM attendance a WHERE a.id = i.attendance_id)) + "
    "(SELECT COUNT(*) FROM attendance_members m WHERE NOT EXISTS "
    "(SELECT 1 FROM attendance a WHERE a.id = m.attendance_id))"
)


def _stored(conn: sqlite3.Connection) -> tuple[list[StoredRecord], int]:
    conn.execute("BEGIN")  # one snapshot for both reads
    try:
        rows = [StoredRecord(*r) for r in conn.execute(_STORED_SQL)]
        orphans = int(conn.execute(_ORPHANS_SQL).fetchone()[0])
    finally:
        conn.execute("COMMIT")
    return rows, orphans


# --- the server as a process ------------------------------------------------------------


def _cli(*args: str, data_dir: Path, stdin: str | None = None) -> str:
    env = {**os.environ, **database_under_test(data_dir).server_env}
    done = subprocess.run([sys.executable, "-m", "server", *args, "--data-dir", str(data_dir)],
                          cwd=REPO, input=stdin, capture_output=True, text=True, timeout=60,
                          env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class ServerProcess:
    """`yuanjiao-server serve` on port 0; `start()` again after `kill()` on the same data."""

    def __init__(self, data_dir: Path, db: DatabaseUnderTest, log_path: Path) -> None:
        self.data_dir, self.db, self.log_path = data_dir, db, log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self.starts = 0
        self._log: IO[bytes] | None = None
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> float:
        """Start and wait for the line that names its address; returns the seconds taken."""
        assert self.proc is None or self.proc.returncode is not None
        t0 = time.monotonic()
        if self._log is None:
            self._log = await asyncio.to_thread(open, self.log_path, "ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server", "serve", "--data-dir", str(self.data_dir),
            "--host", "127.0.0.1", "--port", "0", "--no-zeroconf", cwd=REPO,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=self._log,
            env={**os.environ, **self.db.server_env, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                assert line, f"the server exited before it listened: {self.log_tail()}"
                if m := re.search(r"county server on (http://127\.0\.0\.1:\d+)", line):
                    self.url = m.group(1)
                    break
        self._drain = asyncio.create_task(self._read_rest(self.proc.stdout))
        self.starts += 1
        return time.monotonic() - t0

    async def _read_rest(self, out: asyncio.StreamReader) -> None:
        while await out.readline():
            pass

    async def kill(self) -> None:
        assert self.proc is not None and self.proc.returncode is None, self.log_tail()
        self.proc.send_signal(signal.SIGKILL)
        assert await self.proc.wait() == -signal.SIGKILL
        if self._drain is not None:
            await self._drain

    async def stop(self) -> int:
        """SIGTERM, as systemd stops it; returns the exit status."""
        assert self.proc is not None
        if self.proc.returncode is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise
        if self._drain is not None:
            await self._drain
        return code

    async def aclose(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._drain is not None:
            await self._drain
        if self._log is not None:
            self._log.close()

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"


@contextlib.asynccontextmanager
async def server_process(data_dir: Path, db: DatabaseUnderTest, log: Path
                         ) -> AsyncIterator[ServerProcess]:
    server = ServerProcess(data_dir, db, log)
    try:
        yield server
    finally:
        await server.aclose()


# --- the terminals ------------------------------------------------------------------------


@dataclass
class Tally:
    """What the terminals saw, all together."""

    acked: dict[tuple[str, str], int] = field(default_factory=dict)  # key -> server start
    new_in_answers: int = 0  # records an answer counted as new (len - duplicates)
    batches_acked: int = 0
    lost_answers: int = 0
    in_flight: int = 0
    unreachable: int = 0
    busy_503: int = 0
    bad_status: list[str] = field(default_factory=list)
    records_cut: int = 0  # records in requests that got no answer
    acked_event: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Terminal:
    """One terminal point: its outbox (oldest first), what it made, and how it sends."""

    terminal_id: str
    token: str
    roster: list[str]
    rng: random.Random  # what its records say
    pace: random.Random  # when it sends, and which answers it loses
    made: dict[str, AttendanceRecord] = field(default_factory=dict)
    pending: dict[str, AttendanceRecord] = field(default_factory=dict)

    def close_session(self, now: datetime, starts: int) -> None:
        n = len(self.made) + 1
        if n > min(PER_TERMINAL, PER_START * starts):
            return
        start = now - timedelta(days=2) + timedelta(minutes=10 * n)
        items = [WatchedItem(sha256=sha, watched_seconds=self.rng.randrange(60, 2400, 5) / 2)
                 for sha in self.rng.sample(SHAS, self.rng.randint(1, 2))]
        watched = sum(i.watched_seconds for i in items)
        people = self.rng.sample(self.roster, min(len(self.roster), self.rng.randint(0, 6)))
        rec = AttendanceRecord(
            record_id=f"{self.terminal_id}-{n:04d}", seq=n, started_at=start,
            ended_at=start + timedelta(seconds=watched + 60), items=items, attendees=people,
            session_id=None, title="冬训课",
        )
        self.made[rec.record_id] = rec
        self.pending[rec.record_id] = rec


async def run_terminal(t: Terminal, http: aiohttp.ClientSession, server: ServerProcess,
                       tally: Tally, producing: asyncio.Event) -> None:
    """Close sessions while `producing` is set; deliver until the outbox is empty after it."""
    backoff = 0.05
    while producing.is_set() or t.pending:
        if producing.is_set():
            t.close_session(datetime.now(UTC), server.starts)
            if t.pace.random() < 0.3:
                t.close_session(datetime.now(UTC), server.starts)
        if not t.pending:
            await asyncio.sleep(t.pace.uniform(0.1, 0.3))
            continue
        records = list(t.pending.values())[:BATCH]
        batch = AttendanceBatch(terminal_clock=datetime.now(UTC), records=records)
        client = ServerClient(http, server.url, t.terminal_id, t.token)
        start = server.starts
        tally.in_flight += 1
        try:
            ack = await client.attendance(batch)
        except ServerUnreachable:
            tally.unreachable += 1
            tally.records_cut += len(records)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 0.4)
            continue
        except ServerRefused as e:
            if e.status == 503:
                tally.busy_503 += 1
            else:
                tally.bad_status.append(f"{t.terminal_id}: {e}")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 0.4)
            continue
        finally:
            tally.in_flight -= 1
        backoff = 0.05
        sent = {r.record_id for r in records}
        assert set(ack.accepted) == sent, (t.terminal_id, ack)
        assert 0 <= ack.duplicates <= len(records)
        tally.new_in_answers += len(records) - ack.duplicates
        if t.pace.random() < LOST_ANSWERS:
            tally.lost_answers += 1  # the answer went astray: the outbox keeps them and sends again
        else:
            for rid in ack.accepted:
                del t.pending[rid]
                tally.acked.setdefault((t.terminal_id, rid), start)
            tally.batches_acked += 1
            tally.acked_event.set()
        await asyncio.sleep(t.pace.uniform(0.1, 0.3))


# --- checks -------------------------------------------------------------------------------


def check_stored(rows: list[StoredRecord], orphans: int, must_hold: set[tuple[str, str]],
                 made: dict[tuple[str, str], AttendanceRecord]) -> dict[tuple[str, str], int]:
    """Every record in `must_hold` stored once and whole; nothing stored that was not made."""
    counts = Counter((r.terminal_id, r.record_id) for r in rows)
    doubled = [k for k, n in counts.items() if n > 1]
    assert not doubled, f"stored more than once: {doubled[:10]}"
    missing = sorted(must_hold - counts.keys())
    assert not missing, f"{len(missing)} acknowledged record(s) lost, e.g. {missing[:10]}"
    invented = sorted(counts.keys() - made.keys())
    assert not invented, f"stored but never sent: {invented[:10]}"
    assert orphans == 0, f"{orphans} item or attendee row(s) without their record"
    for r in rows:
        sent = made[(r.terminal_id, r.record_id)]
        want = sum(i.watched_seconds for i in sent.items)
        assert r.seq == sent.seq
        assert r.items == len(sent.items), (r, sent)
        assert r.item_seconds == pytest.approx(want) and r.watched_seconds == pytest.approx(want)
        assert r.attendees == len(set(sent.attendees)), (r, sent)
    return dict(counts)


# --- the test -------------------------------------------------------------------------------


async def test_kill_9_loses_and_doubles_nothing(tmp_path: Path) -> None:
    # This process's loop runs only the terminals (the server has its own process), and
    # asyncio's debug bookkeeping on 40 busy clients would slow the load, not test the server.
    asyncio.get_running_loop().set_debug(False)
    rng = random.Random(SEED)
    print(f"\nfault seed {SEED} (YUANJIAO_FAULT_SEED={SEED} replays these kill moments)")
    t_begin = time.monotonic()
    data = tmp_path / "server"
    db = database_under_test(data)
    await asyncio.to_thread(_cli, "import-county", str(COUNTY), data_dir=data)
    await asyncio.to_thread(_cli, "import-members", str(COUNTY / "members.csv"), data_dir=data)
    await asyncio.to_thread(_cli, "admin", "create", "admin", "--password-stdin", data_dir=data,
                            stdin="fault-test-password-1\n")
    admin = (await asyncio.to_thread(_cli, "admin", "token", "admin", "--name", "faults",
                                     data_dir=data)).split()[-1]
    producing = asyncio.Event()
    producing.set()
    tally = Tally()
    start_seconds: list[float] = []
    kills: list[str] = []
    timeout = aiohttp.ClientTimeout(total=None, connect=3, sock_read=15)
    async with asyncio.timeout(WHOLE_TEST), \
            server_process(data, db, tmp_path / "server.log") as server, \
            aiohttp.ClientSession(timeout=timeout) as http:
        start_seconds.append(await server.start())
        auth = {"Authorization": f"Bearer {admin}"}
        async with http.get(f"{server.url}/api/v1/admin/fleet", headers=auth) as r:
            assert r.status == 200, await r.text()
            ids = sorted(t["id"] for t in (await r.json())["terminals"])[:TERMINALS]
        assert len(ids) == TERMINALS
        terminals: list[Terminal] = []
        for n, tid in enumerate(ids):
            async with http.post(f"{server.url}/api/v1/admin/terminals/{tid}/enrollment",
                                 json={}, headers=auth) as r:
                assert r.status == 201, await r.text()
                code = (await r.json())["code"]
            async with http.post(f"{server.url}/api/v1/enroll", json={"code": code}) as r:
                assert r.status == 201, await r.text()
                token = str((await r.json())["token"])
            roster = await ServerClient(http, server.url, tid, token).roster()
            terminals.append(Terminal(tid, token, [m.member_no for m in roster.members],
                                      random.Random(f"{SEED}-{n}-records"),
                                      random.Random(f"{SEED}-{n}-pace")))
        assert sum(bool(t.roster) for t in terminals) > TERMINALS // 2, "the roster was not imported"


        def made() -> dict[tuple[str, str], AttendanceRecord]:
            return {(t.terminal_id, rid): rec for t in terminals for rid, rec in t.made.items()}

        # Each terminal keeps its own connections, as each box does.
        sessions = [aiohttp.ClientSession(timeout=timeout) for _ in terminals]
        runners = [asyncio.create_task(run_terminal(t, s, server, tally, producing))
                   for t, s in zip(terminals, sessions, strict=True)]
        try:
            for k in range(1, KILLS + 1):
                wait_for = rng.randint(*KILL_AFTER)
                base = tally.batches_acked
                async with asyncio.timeout(START_TIMEOUT):  # the terminals stopped sending
                    while tally.batches_acked - base < wait_for:
                        tally.acked_event.clear()
                        await tally.acked_event.wait()
                held = set(tally.acked)  # every acknowledgement that came before the kill
                flying = tally.in_flight
                await server.kill()
                rows, orphans, integrity = await asyncio.to_thread(db.stored)
                assert integrity == "ok", f"after kill {k}: {integrity}"
                counts = check_stored(rows, orphans, held, made())
                kills.append(f"kill {k}: after {wait_for} batch(es) acknowledged since start "
                             f"{server.starts}, {flying} in flight; {len(held)} acknowledged, "
                             f"{len(counts)} stored")
                print(kills[-1], flush=True)
                start_seconds.append(await server.start())
            producing.clear()
            done, _ = await asyncio.wait(runners, timeout=DRAIN_TIMEOUT)
            assert not tally.bad_status, tally.bad_status[:5]
            assert len(done) == len(runners), \
                f"{len(runners) - len(done)} terminal(s) still had records after {DRAIN_TIMEOUT} s"
            for task in done:
                task.result()  # a terminal's assertion fails the test here
        finally:
            for task in runners:
                task.cancel()
            await asyncio.gather(*runners, return_exceptions=True)
            for s in sessions:
                await s.close()

        everything = made()
        assert set(tally.acked) == everything.keys()
        # Through the admin API, as a person would look (engine-independent): each
        # terminal lists every record it made, once, with its attendees and seconds.
        for t in terminals:
            async with http.get(f"{server.url}/api/v1/admin/terminals/{t.terminal_id}/attendance",
                                params={"limit": str(PER_TERMINAL)}, headers=auth) as r:
                assert r.status == 200, await r.text()
                listed = await r.json()
            assert sorted(x["record_id"] for x in listed) == sorted(t.made), t.terminal_id
            for x in listed:
                sent = t.made[x["record_id"]]
                assert x["attendees"] == len(set(sent.attendees))
                assert x["watched_seconds"] == pytest.approx(
                    sum(i.watched_seconds for i in sent.items))
        assert await server.stop() == 0, server.log_tail()

    rows, orphans, integrity = await asyncio.to_thread(db.stored)
    assert integrity == "ok", integrity
    check_stored(rows, orphans, set(everything), everything)
    stored = len(rows)
    assert stored == len(everything)
    # Counted new in exactly one answer each: the answers seen, plus those lost with a kill.
    committed_unanswered = stored - tally.new_in_answers
    assert 0 <= committed_unanswered <= tally.records_cut, (stored, tally)
    assert tally.unreachable > 0, "no batch was ever cut by a kill"
    seconds = time.monotonic() - t_begin
    print(f"{TERMINALS} terminals, {stored} records made, acknowledged and stored exactly once; "
          f"{KILLS} kills; {tally.unreachable} sends cut or refused a connection "
          f"({tally.records_cut} records in them, {committed_unanswered} of those already "
          f"committed and answered 'already held' later); {tally.lost_answers} answers lost on "
          f"purpose; {tally.busy_503} answers 503; server starts "
          f"{min(start_seconds):.2f}-{max(start_seconds):.2f} s; whole test {seconds:.1f} s")

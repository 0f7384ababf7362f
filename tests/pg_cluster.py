"""A throwaway PostgreSQL cluster from Debian's packages, for the tests and benchmarks.

`PgCluster` runs initdb in a temporary directory and starts the server on a free port
of 127.0.0.1 as the unprivileged `postgres` user (PostgreSQL refuses to run as root).
Each test gets its own schema (`fresh_url()`), which costs a millisecond where a new
database costs a checkpoint. Locale C: text sorts by bytes, as SQLite's does.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DATABASE = "yuanjiao"


def available() -> bool:
    return (PG_BIN / "initdb").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """`start()`, then `fresh_url()` per test; `restart()` for fault tests; `stop()`.

    `durable=False` (the tests) turns fsync off: a crash of this machine is not what the
    tests are about, and the two cores are better spent on the server. Benchmarks keep it on.
    """

    def __init__(self, *, durable: bool = False, max_connections: int = 300) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="yuanjiao-pg-"))
        self.data = self.base / "data"
        self.port = _free_port()
        self._durable = durable
        self._max_connections = max_connections
        self._names = itertools.count(1)
        self._ready: list[str] = []
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> PgCluster:
        if self._as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "--locale=C", "-E", "UTF8",
                  "--auth=trust", "-U", "postgres")
        self._ctl_start()
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        return self

    def _ctl_start(self) -> None:
        options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1",
                   f"-c unix_socket_directories={self.base}",
                   f"-c max_connections={self._max_connections}"]
        if not self._durable:
            # commits still reach the OS before they return (synchronous_commit stays on),
            # so a kill -9 of PostgreSQL itself loses nothing; only an OS crash could
            options += ["-c fsync=off", "-c full_page_writes=off"]
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                  str(self.base / "log"), "-o", " ".join(options), "start")

    def stop(self, *, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop")

    def restart(self) -> None:
        self.stop(mode="immediate")
        self._ctl_start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    @contextlib.contextmanager
    def admin(self, database: str = "postgres") -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname=database, autocommit=True) as conn:
            yield conn

    def url(self, schema: str | None = None) -> str:
        url = f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"
        return url if schema is None else f"{url}?options=-csearch_path%3D{schema}"

    def make_schemas(self, n: int) -> None:
        """Create `n` empty schemas at once, for `fresh_url()` to hand out without a round
        trip (the tests call it from inside the event loop)."""
        names = [f"t{os.getpid()}_{next(self._names)}" for _ in range(n)]
        with self.admin(DATABASE) as conn, conn.transaction():
            for name in names:
                conn.execute(f"CREATE SCHEMA {name}")
        self._ready.extend(names)

    def fresh_url(self) -> str:
        """A URL whose connections see only a new, empty schema of their own."""
        if not self._ready:
            self.make_schemas(1)
        return self.url(self._ready.pop(0))

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()

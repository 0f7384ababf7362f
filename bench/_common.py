"""What the benchmarks share: a server process on loopback, memory sampling, tables.

Every benchmark starts the county server as its own process (so the load generator
and the server do not share an interpreter lock), on 127.0.0.1 and a free port, in a
temporary data directory that is removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MiB = 1 << 20


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def temp_dir(prefix: str, parent: str | None = None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until `url` answers at all (any status), or fail."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout:.0f} s") from None
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_cli(*args: str, data_dir: Path) -> None:
    """One `yuanjiao-server` command (not `serve`), in this interpreter."""
    done = subprocess.run(
        [sys.executable, "-m", "server", args[0], "--data-dir", str(data_dir), *args[1:]],
        cwd=REPO, capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"yuanjiao-server {args[0]} failed: {done.stderr[-1000:]}")


def admin_token(data_dir: Path, username: str = "bench", county: str = "") -> str | None:
    """An API token for a fresh admin account, made with the CLI before the server starts;
    `county` (a county code) makes it that county's account, else the province's.

    None when this version of the server has no accounts (uploads are then open).
    """
    base = [sys.executable, "-m", "server", "admin", "--data-dir", str(data_dir)]
    where = ["--county", county] if county else []
    made = subprocess.run([*base, "create", username, "--password-stdin", *where], cwd=REPO,
                          input=b"bench-password-not-secret\n", capture_output=True)
    if made.returncode != 0:
        if b"invalid choice: 'admin'" in made.stderr:
            return None
        raise RuntimeError(f"making an admin account failed: {made.stderr.decode()[-500:]}")
    out = subprocess.run([*base, "token", username, "--name", "benchmarks"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    return out.split()[-1]


async def enroll_terminals(url: str, admin: str | None, terminals: list[str]) -> dict[str, str]:
    """Each terminal's bearer token, by the real enrollment (an admin's code, traded once).

    Empty when this version of the server has no enrollment (terminal endpoints are open).
    """
    import aiohttp

    if admin is None:
        return {}
    tokens: dict[str, str] = {}
    async with aiohttp.ClientSession(url) as http:
        for tid in terminals:
            async with http.post(f"/api/v1/admin/terminals/{tid}/enrollment", json={},
                                 headers={"Authorization": f"Bearer {admin}"}) as r:
                if r.status == 404 and not tokens:
                    return {}
                if r.status != 201:
                    raise RuntimeError(f"enrollment code for {tid}: HTTP {r.status} {await r.text()}")
                code = (await r.json())["code"]
            async with http.post("/api/v1/enroll", json={"code": code, "software_version": "bench"}) as r:
                if r.status != 201:
                    raise RuntimeError(f"enrolling {tid}: HTTP {r.status} {await r.text()}")
                tokens[tid] = (await r.json())["token"]
    return tokens


async def enrollment_code(url: str, admin: str, terminal_id: str) -> str:
    """The one-time code an admin makes for a terminal point (`POST .../enrollment`)."""
    import aiohttp

    async with aiohttp.ClientSession(url) as http, http.post(
        f"/api/v1/admin/terminals/{terminal_id}/enrollment", json={},
        headers={"Authorization": f"Bearer {admin}"},
    ) as r:
        if r.status != 201:
            raise RuntimeError(f"enrollment code for {terminal_id}: HTTP {r.status} {await r.text()}")
        return str((await r.json())["code"])


class ServerProcess:
    """`yuanjiao-server serve` on 127.0.0.1 and a free port, without mDNS."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> ServerProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self._log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server", "serve", "--data-dir", str(self.data_dir),
                 "--host", HOST, "--port", str(self.port), "--no-zeroconf"],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        try:
            wait_http(f"{self.url}/api/v1/openapi.json", 60, self.proc)
        except BaseException:
            stop_process(self.proc)
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def reset_peak(pid: int) -> int:
    """Forget a process's peak RSS so far (Linux clear_refs); returns the old peak in KiB.

    The server's start-up has a short spike of its own (an argon2 hash at import), which
    is not what a benchmark of serving measures; it is reported apart.
    """
    before = memory_kib(pid)["VmHWM"]
    with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    return before


class RssSampler:
    """Samples a process's VmRSS on a thread; `peak` is the highest seen while running."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, memory_kib(self._pid)["VmRSS"])
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), Python {sys.version.split()[0]}"

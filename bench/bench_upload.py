"""Upload throughput: tus through the real endpoint against the sha256 hashing limit.

    python3 bench/bench_upload.py [--quick] [--size-mib S] [--chunk-mib C ...] [--reps R]

The file is a real MP4 (a few seconds of generated video, its index at the front)
followed by a top-level `free` box of random bytes up to the wanted size: a valid file
that ffprobe and ffmpeg accept, so the upload completes as an upload of a film does.

The client speaks tus over a plain socket and sends each PATCH body with sendfile, so
that on this 2-core machine the client costs as little CPU as possible and the figure is
the server's. The last byte goes in a PATCH of its own: the time the server then spends
on the finished file (ffprobe, a decode check, a poster frame, the move into the store)
is timed apart from the streaming of the bytes. Every PATCH is fsynced by the server
before it answers; the reference runs below do not fsync.

References in the same run, on the same file (in the page cache):
  * `openssl dgst -sha256 FILE`: the hashing limit of one core (the target's reference);
  * `cp FILE COPY && sha256sum COPY`: a copy to disk, then a hash.
Target: streaming at least 0.8x the hashing limit.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from _common import (
    HOST,
    MiB,
    RssSampler,
    ServerProcess,
    admin_token,
    machine,
    median,
    memory_kib,
    reset_peak,
    table,
    temp_dir,
)

TARGET_RATIO = 0.8


def make_video(path: Path, size: int, scratch: Path) -> None:
    """A real MP4 padded with a `free` box of random bytes to exactly `size` bytes."""
    small = scratch / "small.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440", "-t", "4",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-movflags", "+faststart", str(small)],
        check=True,
    )
    head = small.read_bytes()
    small.unlink()
    pad = size - len(head)
    if pad < 16 or pad >= 1 << 32:
        raise SystemExit("choose a size between 1 MiB and 4 GiB")
    block = os.urandom(8 * MiB)
    with open(path, "wb") as f:
        f.write(head)
        f.write(struct.pack(">I4s", pad, b"free"))
        left = pad - 8
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= min(left, len(block))


class TusClient:
    """Just enough HTTP/1.1 for tus: one keep-alive connection, bodies by sendfile."""

    def __init__(self, port: int, token: str | None) -> None:
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._sock = socket.create_connection((HOST, port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""

    def close(self) -> None:
        self._sock.close()

    def request(self, method: str, path: str, headers: dict[str, str],
                body: tuple[int, int, int] | None = None) -> tuple[int, dict[str, str]]:
        """`body` is (file descriptor, offset, count)."""
        headers = {"Host": f"{HOST}", "Tus-Resumable": "1.0.0",
                   "Content-Length": str(body[2] if body else 0), **self._auth, **headers}
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._sock.sendall((head + "\r\n").encode())
        if body is not None:
            fd, offset, count = body
            while count > 0:
                sent = os.sendfile(self._sock.fileno(), fd, offset, count)
                if sent == 0:
                    raise ConnectionError("the server closed the connection mid-body")
                offset += sent
                count -= sent
        return self._response()

    def _response(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self._buf:
            data = self._sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self._buf += data
        head, _, self._buf = self._buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        while len(self._buf) < length:
            data = self._sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self._buf += data
        self._buf = self._buf[length:]
        return status, headers


@dataclass(frozen=True)
class Upload:
    streaming_s: float
    total_s: float
    complete_s: float
    peak_rss_kib: int
    patches: int


def upload(port: int, token: str | None, path: Path, chunk: int, sha256: str, pid: int) -> Upload:
    size = path.stat().st_size
    title = base64.b64encode(b"bench upload").decode()
    client = TusClient(port, token)
    fd = os.open(path, os.O_RDONLY)
    try:
        with RssSampler(pid) as rss:
            t0 = time.perf_counter()
            status, h = client.request("POST", "/api/v1/uploads", {
                "Upload-Length": str(size), "Upload-Metadata": f"title {title}"})
            if status != 201:
                raise SystemExit(f"creating the upload answered {status}")
            location = h["location"]
            offset, patches = 0, 0
            t1 = time.perf_counter()
            # Every byte but the last, in PATCHes of `chunk` bytes.
            while offset < size - 1:
                count = min(chunk, size - 1 - offset)
                status, h = client.request("PATCH", location, {
                    "Content-Type": "application/offset+octet-stream",
                    "Upload-Offset": str(offset)}, (fd, offset, count))
                if status != 204:
                    raise SystemExit(f"PATCH at {offset} answered {status}")
                offset = int(h["upload-offset"])
                patches += 1
            t2 = time.perf_counter()
            status, h = client.request("PATCH", location, {
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(offset)}, (fd, offset, 1))
            t3 = time.perf_counter()
        if status != 204:
            raise SystemExit(f"the last PATCH answered {status}")
        if h.get("yuanjiao-sha256") != sha256:
            raise SystemExit(f"the server computed {h.get('yuanjiao-sha256')}, not {sha256}")
    finally:
        os.close(fd)
        client.close()
    return Upload(t2 - t1, t3 - t0, t3 - t2, rss.peak, patches + 1)


def timed(cmd: list[str] | str, shell: bool = False) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, shell=shell, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t0, out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a 256 MiB file, one run each")
    p.add_argument("--size-mib", type=int, help="file size (default 1024, quick 256)")
    p.add_argument("--chunk-mib", type=int, nargs="+",
                   help="PATCH sizes, 0 for the whole file in one PATCH (default: 64 0)")
    p.add_argument("--reps", type=int, help="runs of each (default 3, quick 1)")
    args = p.parse_args()
    size = (args.size_mib or (256 if args.quick else 1024)) * MiB
    chunks = args.chunk_mib if args.chunk_mib is not None else [64, 0]
    reps = args.reps or (1 if args.quick else 3)

    print(f"machine: {machine()}")
    with temp_dir("yuanjiao-bench-upload-") as tmp:
        video = tmp / "film.mp4"
        make_video(video, size, tmp)
        sha = hashlib.sha256()
        with open(video, "rb") as f:
            while block := f.read(8 * MiB):
                sha.update(block)
        sha256 = sha.hexdigest()
        print(f"file: {size / MiB:g} MiB MP4 (sha256 {sha256[:16]}...), {reps} run(s) of each")

        openssl, cp_sum, dd_sync = [], [], []
        uploads: dict[int, list[Upload]] = {c: [] for c in chunks}
        copy = tmp / "copy.mp4"
        token = admin_token(tmp / "data")
        with ServerProcess(tmp / "data", tmp / "server.log") as server:
            startup_peak = reset_peak(server.pid)
            idle_rss = memory_kib(server.pid)["VmRSS"]
            # One upload first, not counted: the first writes of a fresh process and
            # file system state are slower than the steady state measured below.
            upload(server.port, token, video, 64 * MiB, sha256, server.pid)
            for rep in range(reps):
                secs, out = timed(["openssl", "dgst", "-sha256", str(video)])
                if sha256 not in out:
                    raise SystemExit(f"openssl disagrees: {out}")
                openssl.append(secs)
                print(f"  openssl dgst -sha256       {size / secs / 1e6:7,.0f} MB/s", flush=True)
                for chunk_mib in chunks:
                    chunk = chunk_mib * MiB if chunk_mib else size
                    u = upload(server.port, token, video, chunk, sha256, server.pid)
                    uploads[chunk_mib].append(u)
                    print(f"  tus, {label(chunk_mib):18} {(size - 1) / u.streaming_s / 1e6:7,.0f} MB/s "
                          f"streaming, {size / u.total_s / 1e6:5,.0f} MB/s end to end "
                          f"(completion {u.complete_s:.2f} s), rss {u.peak_rss_kib * 1024 / 1e6:.0f} MB",
                          flush=True)
                secs, _ = timed(f"cp '{video}' '{copy}' && sha256sum '{copy}'", shell=True)
                copy.unlink()
                cp_sum.append(secs)
                print(f"  cp + sha256sum             {size / secs / 1e6:7,.0f} MB/s", flush=True)
                secs, _ = timed(["dd", f"if={video}", f"of={copy}", "bs=4M", "conv=fsync",
                                 "status=none"])
                copy.unlink()
                dd_sync.append(secs)
                print(f"  dd conv=fsync (no hash)    {size / secs / 1e6:7,.0f} MB/s", flush=True)
                del rep
            hwm = memory_kib(server.pid)["VmHWM"]

    limit = size / median(openssl) / 1e6
    cp_ref = size / median(cp_sum) / 1e6
    rows: list[list[object]] = [
        ["openssl dgst -sha256 (hashing limit)", limit, size / min(openssl) / 1e6, "1.00x", ""],
        ["cp + sha256sum", cp_ref, size / min(cp_sum) / 1e6, f"{cp_ref / limit:.2f}x", ""],
        ["dd conv=fsync (writing, no hash)", size / median(dd_sync) / 1e6, size / min(dd_sync) / 1e6,
         f"{size / median(dd_sync) / 1e6 / limit:.2f}x", ""],
    ]
    verdicts = []
    for chunk_mib, runs in uploads.items():
        stream = [(size - 1) / u.streaming_s / 1e6 for u in runs]
        e2e = [size / u.total_s / 1e6 for u in runs]
        peak = max(u.peak_rss_kib for u in runs) * 1024 / 1e6
        rows.append([f"tus streaming, {label(chunk_mib)}", median(stream), max(stream),
                     f"{median(stream) / limit:.2f}x", f"{peak:.0f}"])
        rows.append([f"tus end to end, {label(chunk_mib)}", median(e2e), max(e2e),
                     f"{median(e2e) / limit:.2f}x", ""])
        verdicts.append((label(chunk_mib), median(stream) / limit, median(stream) / cp_ref))
    print()
    print(table(["", "MB/s (median)", "best", "vs hashing limit", "server RSS MB"], rows))
    print()
    print(f"server RSS: {idle_rss * 1024 / 1e6:.0f} MB idle, peak while uploading "
          f"{hwm * 1024 / 1e6:.0f} MB (VmHWM; {startup_peak * 1024 / 1e6:.0f} MB during start-up)")
    for name, ratio, vs_cp in verdicts:
        print(f"target: tus streaming ({name}) >= {TARGET_RATIO}x the hashing limit: {ratio:.2f}x "
              f"{'met' if ratio >= TARGET_RATIO else 'MISSED'} ({vs_cp:.2f}x cp + sha256sum)")
    return 0


def label(chunk_mib: int) -> str:
    return "one PATCH" if chunk_mib == 0 else f"{chunk_mib} MiB PATCHes"


if __name__ == "__main__":
    sys.exit(main())

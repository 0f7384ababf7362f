"""The TV interface's footprint: the daemon's and the interface's resident memory and
CPU on the home screen and while a session plays, on an Xvfb display at 1920x1080.

    python3 bench/bench_tv.py [--quick] [--seconds 10] [--limit-mib 150]

A county server runs as its own process on 127.0.0.1 with the sample county; a 720p
H.264/AAC clip made by ffmpeg is ingested and assigned to the village. The terminal is
enrolled with the CLI (`enroll CODE`), then the daemon (`yuanjiao-terminal run`) and the
interface (`yuanjiao-terminal tv`) run as their own processes on the display, the
daemon's libvlc child (`terminal.playback.player_child`, started for the session) drawing into
the interface's window (audio to libvlc's dummy output: the bench machine has no sound
card). Measured, each for `--seconds`:

* home: the interface on its home screen, the clip cached, nothing playing;
* playing: the session started by key presses (xdotool: 1, OK, OK), at normal speed;
  the player child is measured too;
* home after: the session stopped by key presses (stop, OK), back on the home screen;
  the player child must be gone.

RSS is sampled every 50 ms (peak) and read at the end of each window; CPU is the
process's user+system time over the window, as a percentage of one core. Exits 1 when
daemon + interface on the home screen, before or after the session, exceed `--limit-mib`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from _common import REPO, RssSampler, ServerProcess, admin_token, memory_kib, run_cli, stop_process, temp_dir
from bench_terminal_rss import assign, ingest, wait_log

TERMINAL_ID = "T140121100001"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def make_clip(path: Path, seconds: float) -> None:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", str(seconds),
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
         "-movflags", "+faststart", str(path)], check=True)


def window_name(display: str) -> str:
    out = subprocess.run(["xdotool", "search", "--classname", "yuanjiao-tv", "getwindowname", "%@"],
                         env={**os.environ, "DISPLAY": display}, capture_output=True, text=True)
    return next((line for line in out.stdout.splitlines() if line.startswith("yuanjiao-tv|")), "")


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)


def measure(pids: dict[str, int], seconds: float) -> dict[str, tuple[float, float, float]]:
    """name -> (RSS MiB at the end, peak RSS MiB, CPU % of one core) over `seconds`."""
    samplers = {name: RssSampler(pid) for name, pid in pids.items()}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    for s in samplers.values():
        s.__enter__()
    time.sleep(seconds)
    for s in samplers.values():
        s.__exit__()
    out = {}
    for name, pid in pids.items():
        cpu = (cpu_seconds(pid) - before[name]) / seconds * 100
        out[name] = (memory_kib(pid)["VmRSS"] / 1024, samplers[name].peak / 1024, cpu)
    return out


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def largest_mappings(pid: int, n: int = 6) -> list[tuple[str, float]]:
    """The daemon's resident memory by mapping (file name or [anon]/[heap]), largest first, MiB."""
    sizes: dict[str, int] = {}
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and not parts[0].endswith(":"):
            name = parts[5].rsplit("/", 1)[-1] if len(parts) > 5 else "[anon]"
        elif parts and parts[0] == "Rss:":
            sizes[name] = sizes.get(name, 0) + int(parts[1])
    return [(k, v / 1024) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:n]]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 s windows")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--limit-mib", type=float, default=150.0)
    p.add_argument("--video-output", default="xcb_x11",
                   help="libvlc video output (xcb_x11: plain X11; gl: OpenGL, llvmpipe on Xvfb)")
    args = p.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    for tool in ("Xvfb", "xdotool", "ffmpeg"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (scripts/setup installs it); skipped")
            return 0

    with temp_dir("yj-bench-tv-") as tmp:
        server_dir, data = tmp / "server", tmp / "terminal"
        run_cli("import-county", str(REPO / "demo" / "county"), data_dir=server_dir)
        clip = tmp / "clip.mp4"
        make_clip(clip, seconds * 2 + 20)
        sha = hashlib.sha256(clip.read_bytes()).hexdigest()
        content_id = ingest(server_dir, clip, sha, os.path.getsize(clip))
        admin = admin_token(server_dir)
        display = f":{200 + os.getpid() % 300}"
        xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            wait_for(lambda: Path(f"/tmp/.X11-unix/X{display[1:]}").exists(), 20, "Xvfb")
            with ServerProcess(server_dir, tmp / "server.log") as server:
                asyncio.run(assign(server.url, admin, content_id))
                req = urllib.request.Request(f"{server.url}/api/v1/admin/terminals/{TERMINAL_ID}/enrollment",
                                             data=b"{}", method="POST", headers={
                                                 "Authorization": f"Bearer {admin}",
                                                 "Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    code = json.load(r)["code"]
                subprocess.run([sys.executable, "-m", "terminal", "enroll", code, "--server-url", server.url,
                                "--data-dir", str(data)], cwd=REPO, check=True, capture_output=True)
                port = 20000 + os.getpid() % 20000
                env = {**os.environ, "DISPLAY": display, "PYTHONUNBUFFERED": "1",
                       "YUANJIAO_TERMINAL_AUDIO_OUTPUT": "dummy", "YUANJIAO_TERMINAL_SYNC_INTERVAL": "2",
                       "YUANJIAO_TERMINAL_VIDEO_OUTPUT": args.video_output}
                log = tmp / "daemon.log"
                with open(log, "wb") as out:
                    daemon = subprocess.Popen(
                        [sys.executable, "-m", "terminal", "run", "--data-dir", str(data),
                         "--server-url", server.url, "--no-zeroconf", "--status-host", "127.0.0.1",
                         "--status-port", str(port), "--no-progress"],
                        cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
                procs.append(daemon)
                wait_log(log, rf"ready: {sha[:12]}", 120, daemon)
                with open(tmp / "tv.log", "wb") as out:
                    tv = subprocess.Popen(
                        [sys.executable, "-m", "terminal", "tv", "--data-dir", str(data), "--status-url",
                         f"http://127.0.0.1:{port}"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
                procs.append(tv)
                wait_for(lambda: window_name(display).startswith(f"yuanjiao-tv|home|up|item:{sha}|"), 30,
                         "the home screen with the clip")
                time.sleep(1.0)  # let start-up settle: the figures are for a screen at rest
                pids = {"daemon": daemon.pid, "interface": tv.pid}
                home = measure(pids, seconds)
                for key in ("1", "Return", "Return"):
                    subprocess.run(["xdotool", "key", key], env=env, check=True)
                    time.sleep(0.1)
                wait_for(lambda: "|playing|" in window_name(display), 20, "playing")
                time.sleep(1.0)
                players = children(daemon.pid)
                if len(players) != 1:
                    raise RuntimeError(f"expected one player process under the daemon, found {players}")
                playing = measure({**pids, "player": players[0]}, seconds)
                in_player = largest_mappings(players[0])
                for key, then in (("XF86AudioStop", "|summary|"), ("Return", "|home|")):  # stop; OK
                    subprocess.run(["xdotool", "key", key], env=env, check=True)
                    wait_for(lambda then=then: then in window_name(display), 20, then)
                wait_for(lambda: not children(daemon.pid), 10, "the player process to exit")
                time.sleep(1.0)
                after = measure(pids, seconds)
                kept = largest_mappings(daemon.pid)
        finally:
            for proc in reversed(procs):
                stop_process(proc)
            xvfb.terminate()
            xvfb.wait()

    print(f"TV interface and daemon, 1920x1080 on Xvfb, {seconds:.0f} s windows, "
          f"video output {args.video_output or 'libvlc default'}")
    print(f"{'':26}{'RSS MiB':>9}{'peak':>8}{'CPU %':>8}")
    for label, figures in (("home", home), ("playing 720p", playing), ("home after", after)):
        for name, (rss, peak, cpu) in figures.items():
            print(f"{label + ' / ' + name:26}{rss:9.1f}{peak:8.1f}{cpu:8.1f}")
        total = sum(f[0] for f in figures.values())
        print(f"{label + ' / together':26}{total:9.1f}")
    print("player process while playing, largest resident mappings: "
          + ", ".join(f"{name} {mib:.1f}" for name, mib in in_player))
    print("daemon after the session, largest resident mappings: "
          + ", ".join(f"{name} {mib:.1f}" for name, mib in kept))
    together = max(sum(f[0] for f in home.values()), sum(f[0] for f in after.values()))
    over = together > args.limit_mib
    print(f"target: daemon + interface on home (before and after) < {args.limit_mib:.0f} MiB: "
          f"{'FAIL' if over else 'ok'}")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())

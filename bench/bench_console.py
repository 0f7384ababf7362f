"""Every console screen's API answers against a trivial endpoint, on a full county.

    python3 bench/bench_console.py [--quick] [--runs R] [--members-csv PATH]

The county: the sample county (`import-county demo/county`: 12 townships, 212 villages,
211 terminal points), its roster of 9,432 members (`demo/county/members.csv`, or
--members-csv), 500 contents, 800 assignments, a year of sessions (3 a month per
terminal point, 7,596 in all, with 20 upcoming), and a year of attendance: one record
per session and terminal with about 18 members signed in (≈ 140,000 member-attendances),
plus a heartbeat from every terminal listing 60 cached items. The data is written
straight into the server's SQLite file before the server starts (the benchmark is of
the reads, not of the ingest).

Each screen is the set of requests its page makes when it opens (the page sends them
at once), timed from the first request to the last byte of the last answer, median of
R runs. The reference is `GET /api/v1/server`, the smallest endpoint. Then, where
Chromium and playwright are installed, the same screens are opened in headless Chromium
(logged in as the admin, 1366×768) and timed from the change of address to the screen
drawn, tables and charts included. Target: every screen within 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import sqlalchemy
from _common import REPO, ServerProcess, admin_token, machine, median, run_cli, table, temp_dir
from sqlalchemy import text

sys.path.insert(0, str(REPO))
from server.config import load_config
from server.db import normalise_url
from server.queries import rollups
from server.queries.fleet import record_heartbeat
from shared.protocol import CachedItem, Heartbeat
from shared.timeutil import to_db

TARGET_S = 1.0
CONTENTS = 500
KINDS = ("feature_film", "lecture", "farming_technique")


def seed(data_dir: Path, rng: random.Random) -> dict[str, str]:
    """Fill the database of the server on `data_dir` (its SQLite file, or
    YUANJIAO_DATABASE_URL as the server reads it), in one transaction; returns names the
    screens need (a content, a member...)."""
    engine = sqlalchemy.create_engine(normalise_url(
        load_config(None, os.environ, {"data_dir": data_dir}).database))
    try:
        with engine.begin() as conn:
            return _seed(conn, rng)
    finally:
        engine.dispose()


def _seed(conn: sqlalchemy.Connection, rng: random.Random) -> dict[str, str]:
    now = datetime.now(UTC)
    terminals = [(r[0], r[1]) for r in conn.execute(text("SELECT id, village_code FROM terminals"))]
    units = list(conn.execute(text("SELECT code FROM units")).scalars())
    members: dict[str, list[str]] = {}
    for no, village in conn.execute(text("SELECT member_no, village_code FROM members")):
        members.setdefault(village, []).append(no)
    contents = []
    content_rows = []
    for i in range(CONTENTS):
        cid, sha = uuid.uuid4().hex, hashlib.sha256(f"content {i}".encode()).hexdigest()
        contents.append((cid, sha))
        content_rows.append({
            "id": cid, "sha256": sha, "size": rng.randint(50, 900) << 20,
            "title": f"第{i + 1}讲 农村实用技术与党课", "kind": KINDS[i % 3],
            "filename": f"film{i}.mp4", "duration": float(rng.randint(600, 5400)),
            "created_at": to_db(now - timedelta(days=365 - i % 365))})
    conn.execute(text(
        "INSERT INTO contents (id, sha256, size, title, kind, description, original_filename, "
        "duration_seconds, container, video_codec, audio_codec, width, height, poster_sha256, "
        "poster_size, created_at) VALUES (:id, :sha256, :size, :title, :kind, '', :filename, "
        ":duration, 'mp4', 'h264', 'aac', 1280, 720, NULL, NULL, :created_at)"), content_rows)
    assignments = []
    for i in range(800):
        cid = contents[i % CONTENTS][0]
        scope, target = (("county", "") if i < 50 else ("unit", units[i % len(units)]) if i < 300
                         else ("village", terminals[i % len(terminals)][1]))
        assignments.append({"id": uuid.uuid4().hex, "content_id": cid, "scope": scope,
                            "target": target, "created_at": to_db(now)})
    conn.execute(text(  # a repeated (content, scope, target) is skipped
        "INSERT INTO assignments (id, content_id, scope, target, needed_by, created_at) "
        "VALUES (:id, :content_id, :scope, :target, NULL, :created_at) "
        "ON CONFLICT DO NOTHING"), assignments)
    sessions: list[tuple[str, datetime, str, list[str]]] = []
    start = now - timedelta(days=365)
    for tid, village in terminals:
        for k in range(36):
            at = start + timedelta(days=k * 10 + rng.random() * 3, hours=rng.randint(0, 12))
            sessions.append((uuid.uuid4().hex, at, village, [tid]))
    for k in range(20):
        at = now + timedelta(days=k + 1)
        sessions.append((uuid.uuid4().hex, at, "", [t for t, _ in terminals[k * 10:k * 10 + 30]]))
    session_rows: list[dict[str, object]] = []
    item_of_session: list[dict[str, object]] = []
    village_of_session: list[dict[str, object]] = []
    att_rows: list[dict[str, object]] = []
    items_by_record: dict[str, list[tuple[str, float]]] = {}
    members_by_record: dict[str, list[str]] = {}
    for sid, at, village, tids in sessions:
        cids = [contents[rng.randrange(CONTENTS)] for _ in range(2)]
        session_rows.append({"id": sid, "title": "冬训" if at > now else "月度党课",
                             "starts_at": to_db(at), "created_at": to_db(now)})
        item_of_session += [{"session_id": sid, "position": i, "content_id": c[0]}
                            for i, c in enumerate(cids)]
        villages = {v for t, v in terminals if t in tids}
        village_of_session += [{"session_id": sid, "village_code": v} for v in villages]
        if at > now:
            continue
        tid, record_id = tids[0], uuid.uuid4().hex
        watched = rng.uniform(1800, 9000)
        att_rows.append({"terminal_id": tid, "record_id": record_id, "seq": len(att_rows) + 1,
                         "session_id": sid, "title": "月度党课", "started_at": to_db(at),
                         "ended_at": to_db(at + timedelta(seconds=watched + 300)),
                         "watched_seconds": watched, "terminal_clock": to_db(at),
                         "received_at": to_db(at + timedelta(hours=1)), "digest": "bench"})
        items_by_record[record_id] = [(c[1], watched / 2) for c in dict.fromkeys(cids)]
        roster = members.get(village, [])
        members_by_record[record_id] = rng.sample(roster, min(len(roster), rng.randint(12, 24)))
    conn.execute(text("INSERT INTO sessions (id, title, starts_at, created_at) "
                      "VALUES (:id, :title, :starts_at, :created_at)"), session_rows)
    conn.execute(text("INSERT INTO session_items (session_id, position, content_id) "
                      "VALUES (:session_id, :position, :content_id)"), item_of_session)
    conn.execute(text("INSERT INTO session_villages (session_id, village_code) "
                      "VALUES (:session_id, :village_code)"), village_of_session)
    conn.execute(text(
        "INSERT INTO attendance (terminal_id, record_id, seq, session_id, title, started_at, "
        "ended_at, watched_seconds, terminal_clock, received_at, digest) VALUES (:terminal_id, "
        ":record_id, :seq, :session_id, :title, :started_at, :ended_at, :watched_seconds, "
        ":terminal_clock, :received_at, :digest)"), att_rows)
    ids = {r.record_id: r.id for r in conn.execute(text("SELECT record_id, id FROM attendance"))}
    item_rows = [{"id": ids[rid], "sha256": sha, "watched": w}
                 for rid, items in items_by_record.items() for sha, w in items]
    member_rows = [{"id": ids[rid], "member_no": no}
                   for rid, nos in members_by_record.items() for no in nos]
    conn.execute(text("INSERT INTO attendance_items (attendance_id, sha256, watched_seconds) "
                      "VALUES (:id, :sha256, :watched)"), item_rows)
    conn.execute(text("INSERT INTO attendance_members (attendance_id, member_no) "
                      "VALUES (:id, :member_no) ON CONFLICT DO NOTHING"), member_rows)
    for i, (tid, _) in enumerate(terminals):
        if i % 7 == 0:
            continue  # never reported
        seen = now - (timedelta(days=rng.randint(2, 40)) if i % 5 == 0 else timedelta(seconds=30))
        hb = Heartbeat(software_version="0.4.0", terminal_clock=seen, disk_free=rng.randint(1, 200) << 30,
                       disk_total=256 << 30, outbox_backlog=rng.randint(0, 40), catalog_version=7,
                       cache=[CachedItem(sha256=contents[(i + k) % CONTENTS][1], state="ready",
                                         bytes_present=1) for k in range(60)])
        record_heartbeat(conn, tid, hb, seen, "10.1.2.3")
    # Attendance went in beside the server: it builds its report roll-ups at the next start.
    conn.execute(text("DELETE FROM meta WHERE key = :key"), {"key": rollups.BASIS_KEY})
    return {
        "content": contents[0][0], "session": sessions[0][0],
        "member": conn.execute(text("SELECT member_no FROM attendance_members LIMIT 1")).scalar_one(),
        "terminal": terminals[1][0], "attendance": str(len(att_rows)),
        "member_attendances": str(len(member_rows)), "sessions": str(len(sessions)),
    }


def screens(f: dict[str, str], year: int) -> dict[str, list[str]]:
    a = "/api/v1/admin"
    county = [f"{a}/units", f"{a}/villages", f"{a}/fleet"]
    period = f"from={year - 1}-12-01&to={year}-11-30"
    recent = (datetime.now(UTC) - timedelta(days=90)).date().isoformat()
    return {
        "library 内容库": [f"{a}/contents", f"{a}/contents/reach"],
        "content page 内容详情": [f"{a}/contents/{f['content']}", f"{a}/contents/{f['content']}/usage"],
        "distribution 分发": [f"{a}/contents", f"{a}/assignments", *county],
        "sessions 场次": [f"{a}/sessions?since={recent}", f"{a}/contents", *county],
        "roll call 点名册": [f"{a}/sessions/{f['session']}", f"{a}/sessions/{f['session']}/roll-call"],
        "readiness 就绪": [f"{a}/readiness", f"{a}/fleet", f"{a}/contents"],
        "fleet 终端": [f"{a}/fleet"],
        "terminal 终端详情": [f"{a}/fleet", f"{a}/reports/terminals?from={year}-01-01&to={year}-11-30",
                          f"{a}/terminals/{f['terminal']}/attendance?limit=30"],
        "reports 报表": [f"{a}/reports/coverage?{period}", f"{a}/reports/terminals?{period}",
                       f"{a}/villages"],
        "member search 查找党员": [f"{a}/members?q=%E7%8E%8B"],  # 王: the most common name
        "member record 红本子": [f"{a}/reports/members/{f['member']}"],
        "export XLSX 导出": [f"{a}/reports/terminals?{period}&format=xlsx"],
    }


async def time_screen(http: aiohttp.ClientSession, paths: list[str], token: str | None = None
                      ) -> float:
    """Seconds from the first of `paths` asked (all at once) to the last byte; `token` is
    sent as the bearer when given (else the session's own headers)."""
    headers = {"Authorization": f"Bearer {token}"} if token else None

    async def one(path: str) -> None:
        async with http.get(path, headers=headers) as r:
            if r.status != 200:
                raise RuntimeError(f"{path}: HTTP {r.status} {(await r.text())[:300]}")
            await r.read()
    t0 = time.perf_counter()
    await asyncio.gather(*(one(p) for p in paths))
    return time.perf_counter() - t0


async def measure(url: str, token: str, facts: dict[str, str], runs: int) -> list[list[object]]:
    year = datetime.now(UTC).year
    rows: list[list[object]] = []
    async with aiohttp.ClientSession(url, headers={"Authorization": f"Bearer {token}"}) as http:
        await time_screen(http, ["/api/v1/server"])
        ref = median([await time_screen(http, ["/api/v1/server"]) for _ in range(max(runs, 20))])
        rows.append(["reference GET /api/v1/server", 1, f"{ref * 1000:.1f}", "1.0", ""])
        for name, paths in screens(facts, year).items():
            await time_screen(http, paths)  # warm the page cache once, as a second visit would be
            t = median([await time_screen(http, paths) for _ in range(runs)])
            rows.append([name, len(paths), f"{t * 1000:.1f}", f"{t / ref:.0f}",
                         "ok" if t <= TARGET_S else "SLOW"])
    return rows


BROWSER_SCREENS = ["library", "content", "upload", "distribution", "sessions", "readiness", "fleet",
                   "terminal", "reports", "member", "record", "flagged"]


async def measure_browser(url: str, facts: dict[str, str], runs: int) -> list[list[object]]:
    """Milliseconds from `location.hash = ...` to the screen's section in the page."""
    import shutil

    try:
        from playwright.async_api import async_playwright
    except ImportError:
        return []
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        return []
    routes = {"content": f"library/{facts['content']}", "terminal": f"terminal/{facts['terminal']}",
              "record": f"member/{facts['member']}"}
    rows: list[list[object]] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium,
                                          args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await page.goto(url + "/")
        await page.fill("#login-user", "bench")
        await page.fill("#login-password", "bench-password-not-secret")
        await page.click("#login-form button[type=submit]")
        await page.wait_for_selector("#screen-library")
        for name in BROWSER_SCREENS:
            route = routes.get(name, name)
            section = "#screen-" + route.split("/")[0]
            times = []
            for _ in range(runs + 1):
                await page.evaluate("location.hash = '#/blank'")  # unknown: falls back to library
                await page.wait_for_selector("#screen-library")
                ms = await page.evaluate("""([route, section]) => new Promise((done) => {
                    const t0 = performance.now();
                    const seen = () => document.querySelector('#view ' + section);
                    const obs = new MutationObserver(() => {
                        if (!seen()) return;
                        obs.disconnect();
                        requestAnimationFrame(() => done(performance.now() - t0));
                    });
                    obs.observe(document.querySelector('#view'), { childList: true });
                    location.hash = '#/' + route;
                })""", [route, section])
                times.append(float(ms))
            t = median(times[1:])
            rows.append([name, f"{t:.0f}", "ok" if t <= TARGET_S * 1000 else "SLOW"])
        await browser.close()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 runs per screen instead of 5")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--members-csv", type=Path, default=REPO / "demo" / "county" / "members.csv")
    args = ap.parse_args()
    runs = args.runs or (2 if args.quick else 5)
    rng = random.Random(10)
    with temp_dir("yj-bench-console-") as tmp:
        data = tmp / "data"
        run_cli("import-county", str(REPO / "demo" / "county"), data_dir=data)
        run_cli("import-members", str(args.members_csv), data_dir=data)
        token = admin_token(data)
        if token is None:
            print("this server has no admin accounts; nothing to measure")
            return 1
        t0 = time.perf_counter()
        facts = seed(data, rng)
        seeded = time.perf_counter() - t0
        with ServerProcess(data, tmp / "server.log") as server:
            rows = asyncio.run(measure(server.url, token, facts, runs))
            shown = asyncio.run(measure_browser(server.url, facts, runs))
    print(f"console screens, {machine()}")
    print(f"county: 211 terminals, {sum(1 for _ in args.members_csv.open(encoding='utf-8-sig')) - 1} "
          f"members, {CONTENTS} contents, {facts['sessions']} sessions, {facts['attendance']} "
          f"attendance records, {facts['member_attendances']} member-attendances "
          f"(seeded in {seeded:.1f} s); median of {runs} runs per screen")
    print(table(["screen", "requests", "ms", "× reference", f"≤ {TARGET_S:.0f} s"], rows))
    if shown:
        print("\nin headless Chromium, 1366×768: from the change of address to the screen drawn")
        print(table(["screen", "ms", f"≤ {TARGET_S:.0f} s"], shown))
    slow = [r for r in rows[1:] if r[4] == "SLOW"] + [r for r in shown if r[2] == "SLOW"]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())

"""Importing a 200,000-row roster, as CSV and as XLSX: server memory and time.

    python3 bench/bench_roster.py [--rows 200000] [--limit-mib 150] [--quick]

A county server runs as its own process on 127.0.0.1 (no mDNS) with the sample county.
A roster of N rows (members spread over the county's villages, every tenth with a
year-month date) is made as a UTF-8 CSV and as an XLSX (openpyxl write-only), then
POSTed to /api/v1/admin/members/import, first with ?dry_run=1 and then for real. The
server's RSS is sampled while each import runs (and VmHWM, reset before each, read at
the end). Prints the figures; exits 1 if a peak is over the limit.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import sqlalchemy
from _common import REPO, RssSampler, ServerProcess, admin_token, memory_kib, reset_peak, run_cli, temp_dir

sys.path.insert(0, str(REPO))
from server.config import load_config
from server.db import normalise_url

HEADER = ["序号", "姓名", "性别", "民族", "出生日期", "入党日期", "所在党支部", "所在村（社区）代码",
          "人员类别", "联系电话"]


def rows(n: int, villages: list[str]) -> list[list[str]]:
    out = []
    for i in range(n):
        year = 1950 + i % 40
        born = f"{year}.{1 + i % 12:02d}" if i % 10 == 0 else f"{year}-0{1 + i % 9}-1{i % 9}"
        out.append([str(900000 + i), f"党员{i}", "男" if i % 2 else "女", "汉族", born, "1990-07-01",
                    "中共某村支部委员会", villages[i % len(villages)], "正式党员", ""])
    return out


def make_csv(path: Path, data: list[list[str]]) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(data)


def make_xlsx(path: Path, data: list[list[str]]) -> None:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["某县党员花名册（2026年）"])
    sheet.append(HEADER)
    for row in data:
        sheet.append(row)
    book.save(path)


def post(url: str, token: str | None, path: Path, query: str) -> tuple[int, dict[str, object], float]:
    import json
    import urllib.request

    req = urllib.request.Request(f"{url}/api/v1/admin/members/import{query}", data=path.read_bytes(),
                                 method="POST", headers={"Content-Type": "application/octet-stream"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=600) as r:
        body = json.loads(r.read())
        return r.status, body, time.monotonic() - t0


def village_codes(data_dir: Path) -> list[str]:
    """The villages in the database of the server on `data_dir` (its SQLite file, or
    YUANJIAO_DATABASE_URL as the server reads it)."""
    engine = sqlalchemy.create_engine(normalise_url(
        load_config(None, os.environ, {"data_dir": data_dir}).database))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sqlalchemy.text("SELECT code FROM villages ORDER BY code"))
                        .scalars())
    finally:
        engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--limit-mib", type=int, default=150)
    ap.add_argument("--quick", action="store_true", help="20,000 rows")
    args = ap.parse_args()
    if args.quick:
        args.rows = 20_000
    failed = False
    with temp_dir("roster-bench") as tmp:
        data_dir = tmp / "data"
        run_cli("import-county", str(REPO / "demo" / "county"), data_dir=data_dir)
        villages = village_codes(data_dir)
        token = admin_token(data_dir)
        data = rows(args.rows, villages)
        files = {"csv": tmp / "roster.csv", "xlsx": tmp / "roster.xlsx"}
        make_csv(files["csv"], data)
        make_xlsx(files["xlsx"], data)
        del data
        print(f"{args.rows} rows: CSV {files['csv'].stat().st_size >> 20} MB, "
              f"XLSX {files['xlsx'].stat().st_size >> 20} MB", flush=True)
        with ServerProcess(data_dir, tmp / "server.log") as server:
            reset_peak(server.pid)
            idle = memory_kib(server.pid)["VmRSS"] >> 10
            print(f"server idle RSS {idle} MB", flush=True)
            print("| file | mode | seconds | added | updated | rejected | peak RSS (sampled) | VmHWM |")
            print("|---|---|---:|---:|---:|---:|---:|---:|")
            for kind, path in files.items():
                for query in ("?dry_run=1", ""):
                    reset_peak(server.pid)
                    with RssSampler(server.pid) as sampler:
                        status, body, seconds = post(server.url, token, path, query)
                    hwm = memory_kib(server.pid)["VmHWM"] >> 10
                    peak = sampler.peak >> 10
                    mode = "dry run" if query else "import"
                    counts = " | ".join(str(body.get(k)) for k in ("added", "updated", "rejected"))
                    print(f"| {kind} | {mode} | {seconds:.1f} | {counts} | {peak} MB | {hwm} MB |",
                          flush=True)
                    if status != 200 or max(peak, hwm) > args.limit_mib:
                        failed = True
    print("over the limit or failed" if failed else f"every peak under {args.limit_mib} MB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

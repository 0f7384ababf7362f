"""Loading the county's shape (units.csv, villages.csv) and its terminal points."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import Connection

from server.queries import county


def load_county(conn: Connection, folder: Path) -> tuple[int, int, int]:
    """Units, villages and one terminal per terminal point; returns the three counts."""
    with open(folder / "units.csv", encoding="utf-8-sig", newline="") as f:
        units = [county.Unit(code=r["code"], name=r["name"], kind=r["kind"]) for r in csv.DictReader(f)]
    with open(folder / "villages.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    villages = [county.Village(code=r["code"], name=r["name"], unit_code=r["unit_code"],
                               kind=r["kind"], terrain=r["terrain"]) for r in rows]
    county.upsert_units(conn, units)
    county.upsert_villages(conn, villages)
    added = 0
    for r in rows:
        if r.get("has_terminal", "yes") == "yes":
            added += county.add_terminal(conn, county.terminal_id_for(r["code"]), r["code"],
                                         f"{r['name']}终端站点")
    return len(units), len(villages), added

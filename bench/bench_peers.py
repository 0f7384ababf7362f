"""Sharing between terminals: the same film, the same county, peers off and on.

    python3 bench/bench_peers.py [--seconds-of-film S] [--uplink 20mbit]

Builds the county of tests/netns_county.py in network namespaces (needs root): the
county server behind a rate-limited uplink (`tc tbf`), two village LANs of three
terminal processes each. One film is assigned to all six, once with sharing off
(`peer_serving = false`: every terminal fetches from the server) and once with it on,
each time on fresh namespaces and data. Prints, side by side, the time until every
terminal holds the film verified and the bytes the server's uplink sent.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from _common import REPO, temp_dir

sys.path.insert(0, str(REPO))

from tests import netns_county
from tests.conftest import make_clip


async def main(film_seconds: int, uplink: str) -> None:
    netns_county.UPLINK = uplink
    with temp_dir("yj-bench-peers-", "/tmp") as work:
        film = make_clip(work / "film.mp4", film_seconds, "640x480", 550, "testsrc2")
        rows = []
        for label, peers in (("peers off", False), ("peers on", True)):
            try:
                with netns_county.build_county() as county:
                    rows.append((label, await netns_county.run_county(
                        work / label.replace(" ", "-"), county, film, peers=peers, timeout=600)))
            except netns_county.CannotBuild as e:
                print(f"cannot run: {e}")
                return
    size = rows[0][1].film_bytes
    print(f"one {size / 1e6:.1f} MB film to 6 terminals on 2 LANs, server uplink {uplink}")
    print(f"{'':<11}{'all ready (s)':>14}{'server egress (MB)':>20}{'x film':>8}")
    for label, o in rows:
        print(f"{label:<11}{o.seconds:>14.1f}{o.egress_bytes / 1e6:>20.1f}"
              f"{o.egress_bytes / o.film_bytes:>8.2f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds-of-film", type=int, default=12)
    p.add_argument("--uplink", default="20mbit")
    p.add_argument("--quick", action="store_true", help="(the same: it is short already)")
    args = p.parse_args()
    asyncio.run(main(args.seconds_of_film, args.uplink))

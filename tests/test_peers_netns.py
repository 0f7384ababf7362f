"""A county in network namespaces: the server behind a rate-limited uplink (`tc tbf`),
a router, and two village LANs (Linux bridges) of three terminals each, every program a
real process in its own namespace. One film is assigned to the township of all six.

Every terminal ends up holding it verified, and the bytes that left the server (its
uplink's transmit counter) are at most 1.2 x the film's size x the number of LANs:
terminals hear their LAN over mDNS, one per LAN fetches from the server while the others
wait, then they take it from their peers. Namespaces are removed afterwards; skipped,
with the reason, where they cannot be made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_clip
from tests.netns_county import TERMINALS, CannotBuild, County, build_county, run_county

pytestmark = pytest.mark.asyncio


@pytest.fixture
def county() -> Iterator[County]:
    try:
        with build_county() as built:
            yield built
    except CannotBuild as e:
        pytest.skip(str(e))


async def test_one_film_reaches_two_lans_with_little_more_than_two_copies_from_the_server(
    tmp_path: Path, county: County,
) -> None:
    film = await asyncio.to_thread(make_clip, tmp_path / "film.mp4", 12, "640x480", 550, "testsrc2")
    outcome = await run_county(tmp_path / "run", county, film)
    print(f"film {outcome.film_bytes} bytes; server uplink sent {outcome.egress_bytes} bytes = "
          f"{outcome.egress_bytes / outcome.film_bytes:.2f} x film for 6 terminals on "
          f"{len(TERMINALS)} LANs, all ready in {outcome.seconds:.1f} s")
    assert outcome.egress_bytes <= 1.2 * outcome.film_bytes * len(TERMINALS)

"""`/blobs/<sha256>`: immutable bytes with ETag = the hash, Range/If-Range/HEAD per
RFC 9110, 416 for unsatisfiable ranges, and the whole file (200) when If-Range names
other bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests import tusclient
from tests.conftest import Server

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def blob(server: Server, clip: Path) -> tuple[str, bytes]:
    data = clip.read_bytes()
    r = await tusclient.upload(server.http, data, title="t")
    assert r.status == 204
    return hashlib.sha256(data).hexdigest(), data


async def test_whole_blob(server: Server, blob: tuple[str, bytes]) -> None:
    sha, data = blob
    async with server.http.get(f"/blobs/{sha}") as r:
        assert r.status == 200
        assert await r.read() == data
        assert r.headers["ETag"] == f'"{sha}"'
        assert "immutable" in r.headers["Cache-Control"]
        assert r.headers["Accept-Ranges"] == "bytes"
        assert int(r.headers["Content-Length"]) == len(data)


async def test_head(server: Server, blob: tuple[str, bytes]) -> None:
    sha, data = blob
    async with server.http.head(f"/blobs/{sha}") as r:
        assert r.status == 200
        assert int(r.headers["Content-Length"]) == len(data)
        assert r.headers["ETag"] == f'"{sha}"'
        assert await r.read() == b""


@pytest.mark.parametrize(("spec", "start", "end"), [
    ("bytes=0-99", 0, 99),
    ("bytes=100-", 100, None),
    ("bytes=-50", -50, None),
    ("bytes=10-10", 10, 10),
    ("bytes=5-99999999", 5, None),
])
async def test_single_range(server: Server, blob: tuple[str, bytes], spec: str, start: int,
                            end: int | None) -> None:
    sha, data = blob
    size = len(data)
    first = start if start >= 0 else size + start
    last = size - 1 if end is None else end
    async with server.http.get(f"/blobs/{sha}", headers={"Range": spec}) as r:
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert await r.read() == data[first:last + 1]


async def test_unsatisfiable_range_is_416(server: Server, blob: tuple[str, bytes]) -> None:
    sha, data = blob
    async with server.http.get(f"/blobs/{sha}", headers={"Range": f"bytes={len(data)}-"}) as r:
        assert r.status == 416
        assert r.headers["Content-Range"] == f"bytes */{len(data)}"
        assert (await r.json())["error"]["code"] == "range_not_satisfiable"


async def test_if_range_with_our_etag_gives_part(server: Server, blob: tuple[str, bytes]) -> None:
    sha, data = blob
    async with server.http.get(f"/blobs/{sha}", headers={
            "Range": "bytes=1000-", "If-Range": f'"{sha}"'}) as r:
        assert r.status == 206
        assert await r.read() == data[1000:]


@pytest.mark.parametrize("if_range", ['"0000deadbeef"', 'W/"{sha}"', "Tue, 01 Jan 2019 00:00:00 GMT"])
async def test_mismatched_if_range_gives_whole_file(server: Server, blob: tuple[str, bytes],
                                                    if_range: str) -> None:
    sha, data = blob
    async with server.http.get(f"/blobs/{sha}", headers={
            "Range": "bytes=1000-", "If-Range": if_range.format(sha=sha)}) as r:
        assert r.status == 200
        assert "Content-Range" not in r.headers
        assert await r.read() == data


async def test_if_none_match_is_304(server: Server, blob: tuple[str, bytes]) -> None:
    sha, _ = blob
    async with server.http.get(f"/blobs/{sha}", headers={"If-None-Match": f'"{sha}"'}) as r:
        assert r.status == 304
        assert r.headers["ETag"] == f'"{sha}"'


async def test_if_match_other_is_412(server: Server, blob: tuple[str, bytes]) -> None:
    sha, _ = blob
    async with server.http.get(f"/blobs/{sha}", headers={"If-Match": '"other"'}) as r:
        assert r.status == 412


async def test_several_ranges_give_whole_file(server: Server, blob: tuple[str, bytes]) -> None:
    sha, data = blob
    async with server.http.get(f"/blobs/{sha}", headers={"Range": "bytes=0-1,5-9"}) as r:
        assert r.status == 200
        assert await r.read() == data


async def test_unknown_and_malformed_names_are_404(server: Server) -> None:
    for name in ["0" * 64, "not-a-hash", "../../etc/passwd", "A" * 64]:
        async with server.http.get(f"/blobs/{name}") as r:
            assert r.status == 404, name
            assert (await r.json())["error"]["code"] == "not_found"

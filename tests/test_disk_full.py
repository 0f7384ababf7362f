"""A full disk: uploads get 507, the partial file is removed, the server stays up and
what was stored before is untouched. Runs on a small tmpfs the test mounts itself."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import tusclient
from tests.conftest import serve, server_config

pytestmark = pytest.mark.asyncio
DISK = 4 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_creation_larger_than_free_space_is_507(small_disk: Path) -> None:
    config = server_config(small_disk, data_dir=small_disk / "data")
    async with serve(config) as (_running, http):
        r = await tusclient.create(http, DISK * 2, title="大片")
        assert r.status == 507
        async with http.post("/api/v1/uploads", headers={
                **tusclient.TUS, "Upload-Length": str(DISK * 2),
                "Upload-Metadata": tusclient.metadata(title="大片")}) as r2:
            body = await r2.json()
        assert r2.status == 507 and body["error"]["code"] == "insufficient_storage"
        assert list(config.uploads_dir.iterdir()) == []


async def test_disk_filling_during_uploads(small_disk: Path, clip: Path) -> None:
    config = server_config(small_disk, data_dir=small_disk / "data")
    async with serve(config) as (_running, http):
        kept = await tusclient.upload(http, clip.read_bytes(), title="已有内容")
        assert kept.status == 204
        sha = kept.headers["Yuanjiao-Sha256"]
        # Two uploads that each fit the free space, but not both together.
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        size = int(free * 0.7)
        payloads = [os.urandom(size), os.urandom(size)]
        locations = []
        for _ in payloads:
            created = await tusclient.create(http, size, title="x")
            assert created.status == 201
            locations.append(created.headers["Location"])
        results = await asyncio.gather(*(
            tusclient.patch(http, loc, 0, data) for loc, data in zip(locations, payloads, strict=True)
        ))
        statuses = sorted(r.status for r in results)
        assert 507 in statuses, statuses
        for loc, r in zip(locations, results, strict=True):
            async with http.head(loc, headers=tusclient.TUS) as h:
                if r.status == 507:
                    assert h.status == 404  # removed, not left half-written
                    assert not (config.uploads_dir / (loc.rsplit("/", 1)[1] + ".part")).exists()
        # The server is up and what it held before is whole.
        async with http.get(f"/blobs/{sha}") as b:
            assert b.status == 200
            assert await b.read() == clip.read_bytes()

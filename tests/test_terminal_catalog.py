"""The terminal believes only catalogs signed by the pinned key, for itself, and newer
than the one it holds.

* The server's key is pinned at enrollment (never on first contact); a server with
  another key is refused, whatever it says.
* A catalog whose signed bytes were altered, one for another terminal, and an older one
  (a rollback) are rejected; the catalog in force stays.
* An expired catalog leaves the terminal "stale": it adds nothing new to the cache.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import msgspec
import pytest

from shared.protocol import SignedCatalog
from terminal.daemon import Terminal
from terminal.errors import CatalogRejected, UntrustedServer
from terminal.network.client import ServerClient
from terminal.network.enroll import enroll as trade_code
from terminal.network.trust import Trust
from terminal.storage.catalog import CatalogKeeper, check
from terminal.storage.migrations import MIGRATIONS
from tests.conftest import Server, serve, server_config
from tests.terminal_helpers import TERMINAL_ID, assign, enroll, enrollment_code, terminal_config, upload

pytestmark = pytest.mark.asyncio


async def _envelope(client: ServerClient) -> SignedCatalog:
    answer = await client.catalog(None)
    assert answer.envelope is not None
    return answer.envelope


async def test_pinning_signature_terminal_and_rollback(tmp_path: Path, server: Server, clip: Path) -> None:
    from shared.sqlite import Database

    async with Database(tmp_path / "t.sqlite3", MIGRATIONS) as database, aiohttp.ClientSession() as http:
        trust = Trust(database)
        await trust.async_load()
        with pytest.raises(UntrustedServer, match="not enrolled"):  # no trust on first contact
            await trust.async_check(ServerClient(http, server.url, TERMINAL_ID))
        enrolled = await trade_code(http, database, server.url,
                                    await enrollment_code(server.http, TERMINAL_ID))
        await trust.async_load()
        client = ServerClient(http, server.url, TERMINAL_ID, enrolled.token)
        await trust.async_check(client)  # the key enrollment pinned
        keeper = CatalogKeeper(database, trust, TERMINAL_ID)

        old = await _envelope(client)
        content_id, _sha = await upload(server.http, clip, "党课")
        await assign(server.http, content_id)  # the county's catalog version moves on
        new = await _envelope(client)
        applied = await keeper.async_apply(new, None)
        assert applied.version > msgspec.json.decode(bytes(old.catalog))["version"]

        with pytest.raises(CatalogRejected, match="rollback"):
            await keeper.async_apply(old, None)
        assert keeper.catalog == applied

        raw = bytes(new.catalog).replace("党课".encode(), "假课".encode())
        forged = SignedCatalog(catalog=msgspec.Raw(raw), signature=new.signature,
                               key_fingerprint=new.key_fingerprint)
        with pytest.raises(CatalogRejected, match="signature"):
            check(forged, trust, TERMINAL_ID, None)

        async with Database(tmp_path / "t2.sqlite3", MIGRATIONS) as db2:
            second = await trade_code(http, db2, server.url,
                                      await enrollment_code(server.http, "T140121100002"))
        other = await _envelope(ServerClient(http, server.url, "T140121100002", second.token))
        with pytest.raises(CatalogRejected, match="not T140121100001"):
            check(other, trust, TERMINAL_ID, None)

        # another server (another signing key) at any address is refused
        async with serve(server_config(tmp_path / "impostor"), seed=True) as (impostor, _http):
            with pytest.raises(UntrustedServer):
                await trust.async_check(ServerClient(http, impostor.url, TERMINAL_ID))


async def test_expired_catalog_is_stale_and_adds_nothing(tmp_path: Path, clip: Path) -> None:
    config = server_config(tmp_path, catalog_ttl_hours=1e-7)  # expires as soon as it is signed
    async with serve(config, seed=True) as (running, http):
        content_id, sha = await upload(http, clip, "党课")
        await assign(http, content_id)
        async with Terminal(await enroll(http, terminal_config(tmp_path, running.url), running.url)
                            ) as terminal:
            async def stale() -> bool:
                snap = await terminal.snapshot()
                return snap.catalog_stale and snap.condition.startswith("stale")
            await terminal.wait_until(stale, timeout=30)
            snap = await terminal.snapshot()
            assert [i.state for i in snap.items if i.sha256 == sha] == ["queued"]
            assert not (terminal.config.cache_dir / sha).exists()

"""The terminal's side of the server's JSON API.

Turns transport failures into `ServerUnreachable` and error answers into
`ServerRefused` (with the server's code and details), so callers decide by kind.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import aiohttp
import msgspec

from shared.peers import SignedCredential, Sources
from shared.protocol import (
    AttendanceAck,
    AttendanceBatch,
    ErrorBody,
    Heartbeat,
    HeartbeatAck,
    Roster,
    SignedCatalog,
    TokenRotation,
)
from terminal.errors import ServerRefused, ServerUnreachable

T = TypeVar("T")


class ServerInfo(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /api/v1/server`: the fields the terminal relies on."""

    server_id: str
    key_fingerprint: str
    public_key: str
    name: str = ""
    api_version: str = ""
    challenge_signature: str | None = None


class CatalogAnswer(msgspec.Struct, frozen=True):
    envelope: SignedCatalog | None  # None: 304, the held catalog is current
    etag: str | None


# Transport-level failures: the server did not answer (as opposed to answering "no").
TRANSPORT_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError, OSError)


async def refused(resp: aiohttp.ClientResponse) -> ServerRefused:
    body = await resp.read()
    try:
        err = msgspec.json.decode(body, type=ErrorBody).error
        # message is Chinese (for the site manager), message_en the same for the log reader
        text = f"{err.message} ({err.message_en})" if err.message_en else err.message
        return ServerRefused(resp.status, err.code, text, err.details)
    except msgspec.ValidationError:
        return ServerRefused(resp.status, "http_error", body[:200].decode("utf-8", "replace"))
    except msgspec.DecodeError:
        return ServerRefused(resp.status, "http_error", body[:200].decode("utf-8", "replace"))


class ServerClient:
    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, terminal_id: str, token: str = "",
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.terminal_id = terminal_id
        # the token goes only to terminal paths and blobs, after the key check has passed
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _t(self, tail: str) -> str:
        return self._url(f"/api/v1/terminals/{self.terminal_id}/{tail}")

    async def _json(self, method: str, url: str, kind: type[T], body: Any = None) -> T:
        data = None if body is None else msgspec.json.encode(body)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if "/terminals/" in url:
            headers.update(self.auth)
        try:
            async with self.http.request(method, url, data=data, headers=headers) as resp:
                if resp.status >= 400:
                    raise await refused(resp)
                raw = await resp.read()
        except TRANSPORT_ERRORS as e:
            raise ServerUnreachable(f"{method} {url}: {e!r}") from e
        try:
            return msgspec.json.decode(raw, type=kind)
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            raise ServerRefused(200, "bad_answer", f"{url}: {e}") from e

    async def server_info(self, challenge: str | None = None) -> ServerInfo:
        path = "/api/v1/server" + (f"?challenge={challenge}" if challenge else "")
        return await self._json("GET", self._url(path), ServerInfo)

    async def catalog(self, etag: str | None) -> CatalogAnswer:
        headers = {"If-None-Match": etag, **self.auth} if etag else dict(self.auth)
        url = self._t("catalog")
        try:
            async with self.http.get(url, headers=headers) as resp:
                if resp.status == 304:
                    return CatalogAnswer(None, etag)
                if resp.status >= 400:
                    raise await refused(resp)
                raw = await resp.read()
                new_etag = resp.headers.get("ETag")
        except TRANSPORT_ERRORS as e:
            raise ServerUnreachable(f"GET {url}: {e!r}") from e
        try:
            return CatalogAnswer(msgspec.json.decode(raw, type=SignedCatalog), new_etag)
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            raise ServerRefused(200, "bad_answer", f"catalog envelope: {e}") from e

    async def heartbeat(self, hb: Heartbeat) -> HeartbeatAck:
        return await self._json("POST", self._t("heartbeat"), HeartbeatAck, hb)

    async def rotate_token(self) -> TokenRotation:
        return await self._json("POST", self._t("token"), TokenRotation)

    def use_token(self, token: str) -> None:
        self.auth = {"Authorization": f"Bearer {token}"}

    async def roster(self) -> Roster:
        return await self._json("GET", self._t("roster"), Roster)

    async def peer_credential(self) -> SignedCredential:
        return await self._json("GET", self._t("peer-credential"), SignedCredential)

    async def sources(self, sha256: str, lan: list[str]) -> Sources:
        tail = f"sources/{sha256}" + (f"?lan={','.join(lan)}" if lan else "")
        return await self._json("GET", self._t(tail), Sources)

    async def attendance(self, batch: AttendanceBatch) -> AttendanceAck:
        return await self._json("POST", self._t("attendance"), AttendanceAck, batch)

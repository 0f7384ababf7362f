"""No request, however malformed its headers or path parameters, makes the server
answer 5xx.

A hypothesis property walks the routes table (server/routes.py): for a drawn route it
sends a request with a valid admin or terminal token and existing ids, and puts drawn
bytes (any byte values, including non-ASCII digits like `²` and invalid UTF-8) into one
header the server reads or one path parameter of that route. Requests go over a raw
socket so that no client library cleans the bytes. The answer must be an HTTP status
below 500 (or the connection closed by the HTTP parser for bytes HTTP forbids). The
run is bounded: a fixed number of examples, each request with a timeout.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.routes import ENDPOINTS, Endpoint
from server.runner import RunningServer
from tests import tusclient
from tests.conftest import add_account, admin_session, seed_county, server_config, terminal_token

pytestmark = pytest.mark.asyncio
EXAMPLES = 400
HEADERS = [
    "Authorization", "Content-Type", "Content-Length", "Tus-Resumable", "Upload-Length",
    "Upload-Offset", "Upload-Metadata", "Upload-Checksum", "Upload-Defer-Length",
    "X-HTTP-Method-Override", "Range", "If-Range", "If-None-Match", "If-Match", "Origin",
    "Cookie", "X-CSRF-Token", "X-Forwarded-For", "X-Forwarded-Proto", "Accept", "Host",
]
PARAM = re.compile(r"\{(\w+)\}")
SKIP_METHODS = {"OPTIONS"}
ROUTES = [e for e in ENDPOINTS if e.method not in SKIP_METHODS]


def request_bytes(e: Endpoint, path_values: dict[str, bytes], header: tuple[str, bytes] | None,
                  tokens: dict[str, str]) -> bytes:
    path = PARAM.sub(lambda m: urllib.parse.quote_from_bytes(path_values[m[1]], safe=""), e.path)
    token = tokens["terminal"] if e.group == "terminal" else tokens["admin"]
    lines = {
        "Host": b"127.0.0.1", "Authorization": f"Bearer {token}".encode(),
        "Tus-Resumable": b"1.0.0", "Content-Length": b"0", "Connection": b"close",
    }
    if e.request_media == "application/offset+octet-stream":
        lines |= {"Content-Type": b"application/offset+octet-stream", "Upload-Offset": b"0"}
    elif e.request is not None:
        lines["Content-Type"] = b"application/json"
    if header is not None:
        lines[header[0]] = header[1]
    head = b"".join(k.encode() + b": " + v + b"\r\n" for k, v in lines.items())
    return e.method.encode() + b" " + path.encode() + b" HTTP/1.1\r\n" + head + b"\r\n"


def status_of(port: int, raw: bytes, waits_for_body: bool) -> int | None:
    """The status code answered, or None if the server closed without an answer (or,
    when the request announced a body it never sends, is still waiting for it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2 if waits_for_body else 10) as sock:
        sock.sendall(raw)
        data = b""
        while b"\r\n" not in data:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                if waits_for_body:
                    return None
                raise
            if not chunk:
                return None
            data += chunk
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    assert m, data[:200]
    return int(m[1])


def exchange(port: int, raw: bytes) -> bytes:
    """Send `raw`, return the whole answer (head and the body its Content-Length says)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        answer = b""
        while True:
            head, sep, body = answer.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head) if sep else None
            if length and len(body) >= int(length[1]):
                return answer
            chunk = sock.recv(4096)
            if not chunk:
                return answer
            answer += chunk


async def test_arbitrary_bytes_never_5xx(tmp_path: Path) -> None:
    config = server_config(tmp_path, max_upload_bytes=1 << 20, trust_proxy=True)
    async with RunningServer(config) as running:
        await seed_county(running)
        admin = await add_account(running)
        async with admin_session(running, admin) as http:
            terminal = await terminal_token(http, "T140121100001")
            created = await tusclient.create(http, 1000, title="fuzz")
            upload_id = created.headers["Location"].rsplit("/", 1)[1]
        tokens = {"admin": admin, "terminal": terminal}
        known = {"terminal_id": b"T140121100001", "upload_id": upload_id.encode(),
                 "sha256": b"0" * 64, "content_id": b"c1", "assignment_id": b"a1",
                 "session_id": b"s1", "token_id": b"t1", "member_no": b"1", "record_id": b"r1",
                     "county_code": b"140121"}
        failures: list[tuple[bytes, int]] = []

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(data=st.data())
        def prop(data: st.DataObject) -> None:
            e = data.draw(st.sampled_from(ROUTES), label="route")
            params = PARAM.findall(e.path)
            values = dict(known)
            header = None
            junk = data.draw(st.one_of(
                st.binary(max_size=64),
                st.text(alphabet=st.sampled_from("0123456789²³¹１２３０٣-+_ .eE,;=\"'\\/%"),
                        max_size=24).map(str.encode),
            ), label="bytes")
            if params and data.draw(st.booleans(), label="in path"):
                values[data.draw(st.sampled_from(params), label="param")] = junk
            else:
                name = data.draw(st.sampled_from(HEADERS), label="header")
                header = (name, junk)
            raw = request_bytes(e, values, header, tokens)
            # a drawn Content-Length may announce a body that never comes: the server rightly waits
            status = status_of(running.port, raw, header is not None and header[0] == "Content-Length")
            if status is not None and status >= 500:
                failures.append((raw, status))
            assert status is None or status < 500, (raw, status)

        await asyncio.to_thread(prop)
        assert not failures


async def test_undecodable_header_bytes_quoted_in_an_error_are_400(tmp_path: Path) -> None:
    """A header value that is not UTF-8 (here Upload-Offset: 0xBC), quoted back in the
    error's details, is answered 400 with U+FFFD in its place, not a 500."""
    config = server_config(tmp_path, max_upload_bytes=1 << 20)
    async with RunningServer(config) as running:
        admin = await add_account(running)
        async with admin_session(running, admin) as http:
            created = await tusclient.create(http, 1000, title="坏字节")
        path = created.headers["Location"].split("//", 1)[-1].split("/", 1)[1]
        raw = (f"PATCH /{path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n"
               "Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
               "Content-Length: 0\r\nUpload-Offset: ").encode() + b"\xbc\r\n\r\n"
        answer = await asyncio.to_thread(exchange, running.port, raw)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), answer[:300]
        error = json.loads(body)["error"]
        assert error["code"] == "bad_number" and error["details"]["value"] == "\ufffd"

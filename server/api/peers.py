"""Sharing between terminals: the credential a terminal shows its peers, and which
peers to try first for an item (same village, then the township; the server last)."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import msgspec
from aiohttp import web

from server.api.jsonio import json_response
from server.api.terminal import _terminal
from server.appkeys import CONFIG, DB, LEASES, SIGNER
from server.errors import Conflict, NotFound
from server.peer_leases import lan_key
from server.queries import peers as q
from shared.hashing import is_sha256
from shared.peers import CREDENTIAL_CONTEXT, PeerCredential, PeerSource, SignedCredential, Sources
from shared.protocol import Heartbeat
from shared.timeutil import utcnow

CREDENTIAL_DAYS = 7


async def credential(request: web.Request) -> web.Response:
    t = await _terminal(request)
    if not t.public_key:
        raise Conflict("this terminal enrolled without a key of its own; enroll it again to share "
                       "with its peers", code="no_terminal_key")
    raw = msgspec.json.encode(PeerCredential(
        terminal_id=t.id, unit_code=t.unit_code, public_key=t.public_key,
        expires_at=utcnow() + timedelta(days=CREDENTIAL_DAYS)))
    signature = request.app[SIGNER].sign(CREDENTIAL_CONTEXT + raw)
    return json_response(SignedCredential(credential=msgspec.Raw(raw), signature=signature))


async def sources(request: web.Request) -> web.Response:
    t = await _terminal(request)
    sha = request.match_info["sha256"]
    if not is_sha256(sha):
        raise NotFound(f"{sha} is not a sha256")
    lan = [x for x in request.query.get("lan", "").split(",") if x][:64]
    config = request.app[CONFIG]
    since = utcnow() - timedelta(seconds=config.heartbeat_interval * config.online_missed_heartbeats)
    rows = await request.app[DB].read(lambda c: q.holders(c, sha, t.id, since))
    out = []
    for r in rows:
        hb = msgspec.json.decode(r.heartbeat, type=Heartbeat) if r.heartbeat else None
        if hb is None or hb.peer_port is None:
            continue
        host = r.last_address
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
        out.append(PeerSource(terminal_id=r.id, url=f"http://{host}:{hb.peer_port}",
                              same_village=r.same_village, same_township=True,
                              same_lan=r.id in lan))
    out.sort(key=lambda s: (not s.same_lan, not s.same_village))  # LAN, village, township
    wait = 0.0
    if not out:  # nobody near holds it: one terminal per LAN fetches it from the server
        wait = await request.app[LEASES].claim(lan_key(t.id, lan), sha, t.id)
    return json_response(Sources(peers=out, wait_seconds=wait))

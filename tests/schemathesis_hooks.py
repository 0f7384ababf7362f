"""Schemathesis hooks for tests/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

The admin run exercises DELETE /api/v1/admin/tokens/{token_id}, so sooner or later it
revokes the very token it is sending. Rather than leave that endpoint out, the admin's
credential comes from this provider: it keeps an API token, and when the server stops
accepting it (401), logs in as the admin (YJ_ST_USER / YJ_ST_PASSWORD) and makes a new
one. The terminal run sends a fixed token (YJ_ST_TOKEN) that it cannot revoke.

A positive case (one the document allows) may still be refused for what no schema can
say: an unknown village, a time in the past, a record id stored before with other
contents. The run accepts 422 for those (schemathesis.toml), and `fits_its_model` below
keeps the strictness that gives up: a positive case never gets 422 `invalid_body` (the
JSON does not fit the model) nor a 400, except on tus uploads, whose header values the
document describes by structure only (a title over 200 characters or an unknown kind
inside the metadata's base64, an unknown checksum algorithm: 400, as tus clients expect).

tus chunks (application/offset+octet-stream) are sent as raw bytes."""

from __future__ import annotations

import os
from typing import Any

import requests
import schemathesis


def _base(case: Any) -> str:
    return os.environ["YJ_ST_URL"]


@schemathesis.auth(refresh_interval=600)
class Credential:
    def __init__(self) -> None:
        self.token = os.environ.get("YJ_ST_TOKEN", "")

    def get(self, case: Any, ctx: Any) -> str:
        base = _base(case)
        with requests.Session() as http:
            current = http.get(f"{base}/api/v1/auth/session",
                               headers={"Authorization": f"Bearer {self.token}"}, timeout=20)
            if current.status_code != 401 or not os.environ.get("YJ_ST_PASSWORD"):
                return self.token
            login = http.post(f"{base}/api/v1/auth/login", timeout=20, json={
                "username": os.environ["YJ_ST_USER"], "password": os.environ["YJ_ST_PASSWORD"]})
            login.raise_for_status()
            made = http.post(f"{base}/api/v1/admin/tokens", json={"name": "schemathesis"},
                             headers={"X-CSRF-Token": login.json()["csrf_token"]}, timeout=20)
            made.raise_for_status()
            self.token = str(made.json()["token"])
        return self.token

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


@schemathesis.check
def fits_its_model(ctx: Any, response: Any, case: Any) -> None:
    """A request the document allows is never refused as malformed."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    code = ""
    if response.status_code in (400, 422):
        try:
            code = str(response.json()["error"]["code"])
        except Exception:
            code = "?"
    tus = case.path.startswith("/api/v1/uploads")
    if (response.status_code == 400 and not tus) or code == "invalid_body":
        raise AssertionError(f"a request the document allows got {response.status_code} {code}")

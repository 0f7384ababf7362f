"""The TV interface's side of the local control API (`terminal.interface.control`): blocking calls,
made on the interface's worker thread, never on Tk's."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import msgspec

from terminal.interface import control as ctl
from terminal.interface.snapshot import Snapshot

TIMEOUT = 5.0
SLOW = {"enroll": 40.0, "link-test": 20.0}  # seconds: these wait on the county server


class DaemonDown(Exception):
    """The daemon did not answer (not started yet, restarting)."""


class DaemonApi:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def _request(self, method: str, path: str, body: bytes | None, timeout: float) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base_url + path, data=body, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())
        except (urllib.error.URLError, OSError) as e:
            raise DaemonDown(str(e)) from e

    def status(self) -> Snapshot:
        status, body = self._request("GET", "/status", None, TIMEOUT)
        if status != 200:
            raise DaemonDown(f"status answered {status}")
        return msgspec.json.decode(body, type=Snapshot)

    def roster(self) -> ctl.RosterAnswer:
        status, body = self._request("GET", "/control/roster", None, TIMEOUT)
        if status != 200:
            raise DaemonDown(f"roster answered {status}")
        return msgspec.json.decode(body, type=ctl.RosterAnswer)

    def call(self, action: str, request: Any) -> Any:
        """The action's answer struct, or the `ControlError` the daemon refused with."""
        answer_type = ctl.ROUTES[action][1]
        status, body = self._request("POST", f"/control/{action}", msgspec.json.encode(request),
                                     SLOW.get(action, TIMEOUT))
        if status == 200:
            return msgspec.json.decode(body, type=answer_type)
        try:
            return msgspec.json.decode(body, type=ctl.ControlError)
        except msgspec.DecodeError:
            return ctl.ControlError(code="http", message=f"终端程序出错（{status}）",
                                    message_en=body.decode(errors="replace")[:200])

"""The terminal's local control API: every message shape, defined once.

The TV interface (`terminal.interface.tv`) and `yuanjiao-terminal session` drive the daemon with
these, as JSON over HTTP on the status endpoint, and only from the box itself
(127.0.0.1): `POST /control/<action>` with the action's request as the body, and
`GET /control/roster` for the village roster. `ROUTES` names the request and answer
type of each action; the server decodes the body into the request type and encodes the
answer type, so neither side builds a dict by hand.

A refusal is a `ControlError` (HTTP 409 for "not now", 422 for bad input, 404 for an
unknown action, 502 when the county server could not be reached): a stable `code`, the
words for the site manager in Chinese (`message`) and English (`message_en`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from shared.protocol import Member

# --- requests ----------------------------------------------------------------------------


class StartSession(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Start a catalog session (`session_id`) or the given cached `items` (sha256s).

    `attendees` are member numbers or names from the village roster. `xwindow` is the X
    window id libvlc draws the video into (the TV interface's video frame); 0 lets the
    player open its own full-screen window.
    """

    session_id: str | None = None
    items: list[str] = []
    title: str = ""
    attendees: list[str] = []
    xwindow: Annotated[int, Meta(ge=0)] = 0


class Attend(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Late arrivals signed in to the running session."""

    attendees: list[str]


class Seek(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Go to `seconds` from the start of the current item, or move by `delta` seconds."""

    seconds: Annotated[float, Meta(ge=0)] | None = None
    delta: float | None = None


class Volume(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Set the volume to `level` (0–200, 100 = unchanged) or move it by `delta`."""

    level: Annotated[int, Meta(ge=0, le=200)] | None = None
    delta: Annotated[int, Meta(ge=-200, le=200)] | None = None


class Overlay(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Show the player's overlay (title, elapsed and remaining, number signed in) for
    `seconds`, with an optional extra line (e.g. a member number being typed); 0 hides it."""

    seconds: Annotated[float, Meta(ge=0, le=60)] = 4.0
    note: Annotated[str, Meta(max_length=80)] = ""


class OpenWindow(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Open the download window now, for `hours` (the site manager's override)."""

    hours: Annotated[float, Meta(ge=0, le=72)] = 6.0  # 0: close the override now


class EnrollCode(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The county's 16-digit one-time code; the server is found by mDNS, the stored or
    configured address unless `server_url` is given."""

    code: Annotated[str, Meta(min_length=1, max_length=64)]
    server_url: str = ""


class UsbImport(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Take in what verifies from the USB stick mounted at `directory` and write this
    terminal's undelivered attendance and state back onto it (terminal/storage/usb.py)."""

    directory: Annotated[str, Meta(min_length=1, max_length=4096)]


class Nothing(Struct, frozen=True, kw_only=True):
    """The body of actions that need none (`pause`, `resume`, `next`, `stop`, `link-test`)."""


# --- answers ------------------------------------------------------------------------------


class Done(Struct, frozen=True, kw_only=True):
    action: str


class Started(Struct, frozen=True, kw_only=True):
    """Answered once something plays (`playing`), when the whole session already ran
    (`played`, short items), or after a while with nothing playing yet (`starting`)."""

    title: str
    attendees: list[str]  # member numbers
    state: Literal["playing", "played", "starting"] = "playing"
    record_id: str = ""


class Attendees(Struct, frozen=True, kw_only=True):
    attendees: list[str]


class WindowOpen(Struct, frozen=True, kw_only=True):
    window_open_until: str  # RFC 3339, UTC


class Enrolled(Struct, frozen=True, kw_only=True):
    terminal_id: str
    village_name: str
    server_name: str


class LinkTest(Struct, frozen=True, kw_only=True):
    ok: bool
    server_url: str | None
    milliseconds: float
    message: str  # Chinese first


class RosterAnswer(Struct, frozen=True, kw_only=True):
    village_name: str
    members: list[Member]


class UsbResult(Struct, frozen=True, kw_only=True):
    usb: dict[str, Any]  # terminal.storage.usb.UsbReport: imported, missing, damaged, skipped, returns
    complete: bool  # everything on the stick was taken in and the returns were written


class ControlError(Struct, frozen=True, kw_only=True):
    code: str
    message: str  # Chinese: what happened and what to do
    message_en: str


class ControlRefused(ValueError):
    """Raised by a control handler; becomes a `ControlError` with `status`. A ValueError:
    it is always the request that cannot be done (its `str` is the English words)."""

    def __init__(self, status: int, code: str, message: str, message_en: str) -> None:
        super().__init__(message_en)
        self.status = status
        self.error = ControlError(code=code, message=message, message_en=message_en)


def refused(code: str, message: str, message_en: str) -> ControlRefused:
    return ControlRefused(409, code, message, message_en)


# action -> (request type, answer type)
ROUTES: dict[str, tuple[type[Any], type[Any]]] = {
    "start": (StartSession, Started),
    "attend": (Attend, Attendees),
    "pause": (Nothing, Done),
    "resume": (Nothing, Done),
    "toggle": (Nothing, Done),
    "next": (Nothing, Done),
    "stop": (Nothing, Done),
    "seek": (Seek, Done),
    "volume": (Volume, Done),
    "overlay": (Overlay, Done),
    "window": (OpenWindow, WindowOpen),
    "enroll": (EnrollCode, Enrolled),
    "usb": (UsbImport, UsbResult),
    "link-test": (Nothing, LinkTest),
}


def decode_request(action: str, body: bytes) -> Any:
    """The request struct for `action` from a JSON body; `ControlRefused` when it does not fit."""
    if action not in ROUTES:
        raise ControlRefused(404, "no_such_action", f"没有这个操作：{action}", f"no control {action!r}")
    try:
        return msgspec.json.decode(body or b"{}", type=ROUTES[action][0])
    except msgspec.ValidationError as e:
        raise ControlRefused(422, "bad_request", f"请求内容不对：{e}", f"bad request: {e}") from None
    except msgspec.DecodeError:
        raise ControlRefused(422, "bad_request", "请求内容必须是 JSON 对象",
                             "the body must be a JSON object") from None

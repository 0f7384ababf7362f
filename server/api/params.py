"""Numbers and flags from headers, paths and queries, parsed strictly, one way.

Every integer the server reads from a request is ASCII digits 0-9 and in range
(`shared.typed.strict_int`); anything else is a 400 `bad_number` naming the header or
parameter, with the bounds in `details` so the Chinese message can say them.
"""

from __future__ import annotations

from aiohttp import web

from server.errors import BadRequest
from shared.typed import NumberError, strict_int

MAX_INT64 = 2**63 - 1
FLAG_TRUE = ("", "1", "true", "yes")  # a bare `?name` is a yes
FLAG_FALSE = ("0", "false", "no")


def parse_int(raw: str, name: str, low: int = 0, high: int = MAX_INT64) -> int:
    """`raw` as an int in [low, high]; BadRequest(code="bad_number") otherwise."""
    try:
        return strict_int(raw, name, low, high)
    except NumberError as e:
        raise BadRequest(str(e), code="bad_number", details={
            "name": e.name, "value": e.value, "low": e.low, "high": e.high}) from None


def int_header(request: web.Request, name: str, low: int = 0, high: int = MAX_INT64) -> int:
    """A required integer header; 400 `missing_header` if absent."""
    raw = request.headers.get(name)
    if raw is None:
        raise BadRequest(f"the {name} header is required", code="missing_header",
                         details={"name": name})
    return parse_int(raw.strip(" \t"), name, low, high)


def int_query(request: web.Request, name: str, default: int, low: int = 0,
              high: int = MAX_INT64) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    return parse_int(raw, f"query parameter {name}", low, high)


def flag_query(request: web.Request, name: str) -> bool:
    """`?name=1|true|yes` is True, `0|false|no` or absent False; anything else 400."""
    raw = request.query.get(name)
    if raw is None:
        return False
    if raw in FLAG_TRUE:
        return True
    if raw in FLAG_FALSE:
        return False
    raise BadRequest(f"query parameter {name} must be 1 or 0 (got {raw[:40]!r})",
                     code="bad_request", details={"problem": f"参数 {name} 只能是 1 或 0"})

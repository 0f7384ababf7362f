"""The server's exceptions and the one error body they become (`error_response`; the
middleware that applies it is in `server.middlewares`).

    ServerError                    500 internal
    ├── BadRequest                 400 bad_request        (malformed JSON, headers, query)
    ├── Unauthorized               401 unauthorized       (no or bad credentials)
    ├── Forbidden                  403 forbidden          (role, scope, CSRF)
    ├── NotFound                   404 not_found
    ├── Conflict                   409 conflict           (e.g. tus offset mismatch)
    ├── Gone                       410 gone               (expired upload)
    ├── PreconditionFailed         412 precondition_failed (e.g. wrong tus version)
    ├── PayloadTooLarge            413 too_large
    ├── RangeNotSatisfiable        416 range_not_satisfiable
    ├── UnsupportedMediaType       415 unsupported_media_type
    ├── Unprocessable              422 unprocessable      (not a video, conflicting record)
    │   └── InvalidBody            422 invalid_body       (JSON that does not fit the model)
    ├── TooManyRequests            429 too_many_requests  (login throttling)
    ├── ChecksumMismatch           460 checksum_mismatch  (tus checksum extension)
    ├── InsufficientStorage        507 insufficient_storage
    ├── ServiceUnavailable         503 service_unavailable (store_unavailable: bucket down)
    (503 database_unavailable: the database did not answer; answered by the middleware)

Every error body has one shape:
{"error": {"code": ..., "message": Chinese, "message_en": English, "details"?: {...}}}.
A raise site passes the English text (it becomes `message_en`) and, where a more specific
code helps, that code and the details its Chinese template needs; `server.messages`
holds the one table code -> Chinese template.
"""

from __future__ import annotations

import logging

import msgspec
from aiohttp import web

from server.messages import chinese
from shared.protocol import ErrorBody, ErrorDetail

log = logging.getLogger(__name__)


class ServerError(Exception):
    status = 500
    code = "internal"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.headers = headers


class BadRequest(ServerError):
    status, code = 400, "bad_request"


class Unauthorized(ServerError):
    status, code = 401, "unauthorized"


class Forbidden(ServerError):
    status, code = 403, "forbidden"


class NotFound(ServerError):
    status, code = 404, "not_found"


class Conflict(ServerError):
    status, code = 409, "conflict"


class Gone(ServerError):
    status, code = 410, "gone"


class PreconditionFailed(ServerError):
    status, code = 412, "precondition_failed"


class PayloadTooLarge(ServerError):
    status, code = 413, "too_large"


class UnsupportedMediaType(ServerError):
    status, code = 415, "unsupported_media_type"


class RangeNotSatisfiable(ServerError):
    status, code = 416, "range_not_satisfiable"


class Unprocessable(ServerError):
    status, code = 422, "unprocessable"


class InvalidBody(Unprocessable):
    code = "invalid_body"


class TooManyRequests(ServerError):
    status, code = 429, "too_many_requests"


class ChecksumMismatch(ServerError):
    status, code = 460, "checksum_mismatch"


class InsufficientStorage(ServerError):
    status, code = 507, "insufficient_storage"


class ServiceUnavailable(ServerError):
    """Something the server relies on (the media bucket) does not answer; retry later."""

    status, code = 503, "service_unavailable"


def store_unavailable(reason: str, retry_after: float) -> ServiceUnavailable:
    """The 503 for a media bucket that does not answer: Retry-After, what was kept."""
    seconds = max(1, round(retry_after))
    return ServiceUnavailable(
        f"the media store (bucket) does not answer: {reason}; what was received is kept, "
        f"try again in {seconds} s", code="store_unavailable",
        details={"retry_after": seconds}, headers={"Retry-After": str(seconds)})


def error_response(
    status: int, code: str, message: str, details: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The one error body: `message` in Chinese from the code's template, `message_en` as given.
    Text quoting a request's undecodable bytes (held as lone surrogates) shows each as U+FFFD."""
    try:
        body = msgspec.json.encode(ErrorBody(error=ErrorDetail(
            code=code, message=chinese(code, status, details), message_en=message,
            details=details)))
    except UnicodeEncodeError:
        clean = _decodable(details)
        assert clean is None or isinstance(clean, dict)
        body = msgspec.json.encode(ErrorBody(error=ErrorDetail(
            code=code, message=str(_decodable(chinese(code, status, clean))),
            message_en=str(_decodable(message)), details=clean)))
    return web.Response(
        status=status, body=body, content_type="application/json", charset="utf-8",
        headers=headers,
    )


def _decodable(value: object) -> object:
    """`value` with every string's lone surrogates (bytes a request held that were not
    UTF-8, as Python's surrogateescape keeps them, or a JSON \\ud800 escape) shown as U+FFFD."""
    if isinstance(value, str):
        try:  # the bytes surrogateescape kept: each becomes one U+FFFD
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # other lone surrogates
            raw = value.encode("utf-8", "surrogatepass")
        return raw.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(_decodable(k)): _decodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_decodable(v) for v in value]
    return value


HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 412: "precondition_failed",
    413: "too_large", 415: "unsupported_media_type", 416: "range_not_satisfiable",
    429: "too_many_requests",
}


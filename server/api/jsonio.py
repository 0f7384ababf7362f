"""JSON in and out of handlers, through the shared msgspec models."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from server.errors import BadRequest, InvalidBody, Unprocessable, UnsupportedMediaType

T = TypeVar("T")


async def read_json(request: web.Request, model: type[T]) -> T:
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"send the body as application/json (got {request.content_type or 'nothing'})"
        )
    body = await request.read()
    value = await _decode(body, model)
    # Only what the model keeps is looked at: a NUL in a member the model ignores is
    # never stored, so it is no reason to refuse the body.
    if _NUL_ESCAPE in body and (where := await asyncio.to_thread(_nul_at, value)) is not None:
        # Its own code: the body fits the schema (any string does), so it is not
        # invalid_body; the text itself is what cannot be kept.
        raise Unprocessable(f"the text at {where} holds a NUL character (\\u0000), which cannot "
                            "be stored", code="nul_character", details={"path": where})
    return value


async def _decode(body: bytes, model: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=model)
    except msgspec.ValidationError as e:
        if "got `float`" in str(e):
            # JSON has one number type: 2.0 is the integer 2 (as JSON Schema, and so the
            # OpenAPI document, says), which msgspec's typed decoding refuses.
            try:
                return await asyncio.to_thread(_decode_integral, body, model)
            except msgspec.ValidationError as again:
                e = again
        raise InvalidBody(f"the JSON body does not fit: {e}", details=_problem(str(e))) from None
    except msgspec.DecodeError as e:
        raise BadRequest(f"the body is not valid JSON: {e}", code="invalid_json") from None


_NUL_ESCAPE = b"\\u0000"  # how JSON writes the NUL character; no database stores it in text


def _nul_at(decoded: object) -> str | None:
    """The JSON path of the first string (or key) holding NUL in what the model decoded,
    if any. Blocking: a walk of the whole value."""
    stack: list[tuple[str, Any]] = [("$", msgspec.to_builtins(decoded))]
    while stack:
        where, v = stack.pop()
        if isinstance(v, str) and "\x00" in v:
            return where
        if isinstance(v, dict):
            for k, item in v.items():
                if "\x00" in k:
                    return where
                stack.append((f"{where}.{k}", item))
        elif isinstance(v, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(v))
    return None


def _decode_integral(body: bytes, model: type[T]) -> T:
    """Blocking (a walk over the whole body): call it from a thread."""
    return msgspec.convert(_integral(msgspec.json.decode(body)), type=model)


def _integral(value: Any) -> Any:
    """`value` with every whole float (2.0) as an int; fields typed float still take it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _problem(problem: str) -> dict[str, object]:
    """Details for the Chinese message: where, and the limit when one was passed."""
    details: dict[str, object] = {"path": _where(problem)}
    if found := re.search(r"length (<=|>=) (\d+)", problem):
        details["most" if found[1] == "<=" else "least"] = int(found[2])
    return details


def _where(problem: str) -> str:
    """The JSON path msgspec names in a validation error: `$.records[0].attendees`."""
    at = problem.rpartition(" - at `")[2].rstrip("`") if " - at `" in problem else "$"
    missing = re.search(r"missing required field `([^`]+)`", problem)
    return f"{at}.{missing[1]}" if missing else at


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(value), status=status, headers=headers,
        content_type="application/json", charset="utf-8",
    )


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> web.Response:
    """CSV with a byte-order mark, so the county's spreadsheet opens the Chinese right."""
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return web.Response(
        body=buf.getvalue().encode("utf-8"), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


FORMATS = ("json", "csv", "xlsx")


def wants_csv(request: web.Request) -> bool:
    """`?format=csv` or `?format=xlsx`: the report as a table file rather than JSON
    (`json`, the default, otherwise); any other format is a 400."""
    fmt = request.query.get("format", "json")
    if fmt not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)} (got {fmt[:20]!r})",
                         details={"problem": "参数 format 只能是 json、csv 或 xlsx"})
    return fmt != "json"


def _xlsx_bytes(header: Sequence[str], rows: list[Sequence[Any]]) -> bytes:
    # XlsxWriter streams rows (constant memory) and writes a year of terminal months
    # several times faster than openpyxl's write-only mode.
    import xlsxwriter

    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"constant_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, list(header))
    for i, row in enumerate(rows, start=1):
        sheet.write_row(i, 0, list(row))
    book.close()
    return buf.getvalue()


async def table_response(request: web.Request, name: str, header: Sequence[str],
                         rows: Iterable[Sequence[Any]]) -> web.Response:
    """The rows as `name`.csv (UTF-8 with BOM) or, for `?format=xlsx`, `name`.xlsx
    (built in a thread: a year of terminal months is a few thousand rows)."""
    if request.query.get("format") != "xlsx":
        return csv_response(f"{name}.csv", header, rows)
    body = await asyncio.to_thread(_xlsx_bytes, header, list(rows))
    return web.Response(body=body, content_type=XLSX_TYPE,
                        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})


def query_date(request: web.Request, name: str, default: date) -> date:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name}={raw!r} is not a date like 2026-01-31",
                         details={"problem": f"参数 {name} 应为 2026-01-31 这样的日期"}) from None


def local_day_start(d: date, tz: tzinfo) -> datetime:
    """Midnight of day `d` in the county's zone `tz`, as a UTC instant."""
    return datetime.combine(d, time(0), tz).astimezone(UTC)


def local_text(dt: datetime, tz: tzinfo) -> str:
    """`dt` as the county reads it: YYYY-MM-DD HH:MM in zone `tz`."""
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M")

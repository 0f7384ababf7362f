"""Reading the member roster as the county exports it.

The county's spreadsheet export has Chinese headers and comes as UTF-8 with a byte-order
mark, as GBK from older office PCs, or as XLSX. Rows are checked one by one: a bad row
is reported with its line number and reason, and the good rows are still imported.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

# Header in the county export -> field. A few spellings seen in real exports are accepted.
HEADERS: dict[str, str] = {
    "序号": "member_no", "编号": "member_no", "党员编号": "member_no",
    "姓名": "name",
    "性别": "sex",
    "民族": "ethnicity",
    "出生日期": "born",
    "入党日期": "joined", "入党时间": "joined",
    "所在党支部": "branch", "党支部": "branch",
    "所在村（社区）代码": "village_code", "所在村(社区)代码": "village_code", "村代码": "village_code",
    "人员类别": "category", "党员类别": "category",
    "联系电话": "phone", "手机号码": "phone",
}
REQUIRED = ("member_no", "name", "village_code")
MAX_ROWS = 200_000


class RosterFormatError(ValueError):
    """The file as a whole cannot be read (not a roster, unknown encoding, no header)."""


@dataclass(frozen=True)
class MemberRow:
    member_no: str
    name: str
    village_code: str
    sex: str
    ethnicity: str
    born: str | None
    joined: str | None
    branch: str
    category: str
    phone: str


@dataclass(frozen=True)
class RowError:
    row: int  # line in the file, the header being line 1
    member_no: str
    message: str


def decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise RosterFormatError(
            "the file is neither UTF-8 nor GBK text; save it from the spreadsheet as CSV or XLSX"
        ) from None


def _rows_from_xlsx(data: bytes) -> Iterator[list[str]]:
    import openpyxl  # only needed for spreadsheets

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:
        raise RosterFormatError(f"the XLSX file cannot be opened ({e})") from None
    sheet = book.worksheets[0]
    for values in sheet.iter_rows(values_only=True):
        yield ["" if v is None else (v.date().isoformat() if hasattr(v, "date") else str(v))
               for v in values]


def read_rows(data: bytes) -> Iterator[list[str]]:
    if data.startswith(b"PK\x03\x04"):
        yield from _rows_from_xlsx(data)
        return
    text = decode(data)
    yield from csv.reader(io.StringIO(text, newline=""))


_DATE_RE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


def _date(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    m = _DATE_RE.match(value.split(" ")[0])
    if not m:
        raise ValueError(f"date {value!r} is not like 1970-01-31")
    return date(int(m[1]), int(m[2]), int(m[3])).isoformat()


def parse(data: bytes, known_villages: set[str]) -> tuple[list[MemberRow], list[RowError]]:
    rows = read_rows(data)
    header = next(rows, None)
    if header is None:
        raise RosterFormatError("the file is empty")
    fields = [HEADERS.get(h.strip().lstrip("\ufeff")) for h in header]
    missing = [f for f in REQUIRED if f not in fields]
    if missing:
        names = {"member_no": "序号", "name": "姓名", "village_code": "所在村（社区）代码"}
        raise RosterFormatError(
            "the header lacks the column(s) " + "、".join(names[m] for m in missing)
            + "; export the roster with the county's standard columns"
        )
    good: list[MemberRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(rows, start=2):
        if line > MAX_ROWS:
            raise RosterFormatError(f"the file has more than {MAX_ROWS} rows")
        if not any(cell.strip() for cell in raw):
            continue
        rec = {f: raw[i].strip() for i, f in enumerate(fields) if f and i < len(raw)}
        no = rec.get("member_no", "")
        problem = _check(rec, known_villages, seen)
        if problem is None:
            try:
                born, joined = _date(rec.get("born", "")), _date(rec.get("joined", ""))
            except ValueError as e:
                problem = str(e)
        if problem is not None:
            errors.append(RowError(row=line, member_no=no, message=problem))
            continue
        seen[no] = line
        good.append(MemberRow(
            member_no=no, name=rec["name"], village_code=rec["village_code"],
            sex=rec.get("sex", ""), ethnicity=rec.get("ethnicity", ""), born=born, joined=joined,
            branch=rec.get("branch", ""), category=rec.get("category", ""),
            phone=rec.get("phone", ""),
        ))
    return good, errors


def _check(rec: dict[str, str], villages: set[str], seen: dict[str, int]) -> str | None:
    no = rec.get("member_no", "")
    if not no:
        return "序号 (member number) is empty"
    if len(no) > 32:
        return "序号 (member number) is longer than 32 characters"
    if no in seen:
        return f"序号 {no} appears again (first on line {seen[no]})"
    if not rec.get("name"):
        return "姓名 (name) is empty"
    code = rec.get("village_code", "")
    if not code:
        return "所在村（社区）代码 (village code) is empty"
    if code not in villages:
        return f"village code {code} is not a village of this county"
    if rec.get("sex") and rec["sex"] not in ("男", "女"):
        return f"性别 (sex) {rec['sex']!r} is not 男 or 女"
    return None

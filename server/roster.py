"""Reading the member roster as counties export it.

The export comes as CSV (UTF-8 with or without a byte-order mark, or GBK from older
office PCs), as XLSX, or as XLS (Excel 97-2003). Above the header there are often
title rows (花名册 name and date, merged across the columns): the header is the first
of the first `HEADER_SEARCH_ROWS` rows that names the required columns, and the rows
above it are reported as skipped.

Rows stream: nothing holds the whole file or all its members in memory, so a
200,000-row roster imports in bounded memory. `check()` reads the file once, says what
each row would do, and stages the rows it accepts (ok or warning) in a throwaway SQLite
file; `store()` upserts the staged rows inside one write transaction (seconds, not the
minutes a big spreadsheet takes to parse), so an import is all or nothing.

Every code a person typed (序号, village code) is normalised with NFKC first
(`shared.typed.normalize_code`). A row is refused, with its line (the spreadsheet's
row number) and a reason in Chinese then English, when: the member number is empty,
too long, or was turned into scientific notation by Excel (`1.40121E+17`: the digits
are gone, so it is never stored and never a "duplicate" of another such row); the
number came earlier in the file (both lines named); the name is empty; the village
code is empty, mangled or not of this county (for a county's account: not of its
county, worded as for a code that does not exist); the number is a member of another
county (a county's account changes its own members only); the sex is not 男/女.
Optional dates never cost a row: a year-month (`1965.03`, `1966年5月`) is kept as
`1965-03`, and a date that cannot be read is dropped with a warning.

Errors of the whole file are RosterFormatError (English text, Chinese in `zh`, and an
error-table `code`); a spreadsheet whose declared uncompressed size or compression
ratio is absurd (a zip bomb) is refused before it is opened.
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Set
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Connection, bindparam, text

from shared.timeutil import to_db, utcnow
from shared.typed import is_scientific, normalize_code

if TYPE_CHECKING:
    from server.queries.staging import Staging

# Header in the county export -> field. A few spellings seen in real exports are accepted;
# they are compared after NFKC and with spaces removed, so full-width brackets match too.
_HEADERS: dict[str, str] = {
    "序号": "member_no", "编号": "member_no", "党员编号": "member_no",
    "姓名": "name",
    "性别": "sex",
    "民族": "ethnicity",
    "出生日期": "born", "出生年月": "born",
    "入党日期": "joined", "入党时间": "joined", "入党年月": "joined",
    "所在党支部": "branch", "党支部": "branch",
    "所在村（社区）代码": "village_code", "村代码": "village_code", "村（社区）代码": "village_code",
    "人员类别": "category", "党员类别": "category",
    "联系电话": "phone", "手机号码": "phone",
}
HEADERS: dict[str, str] = {normalize_code(k): v for k, v in _HEADERS.items()}
REQUIRED = ("member_no", "name", "village_code")
REQUIRED_ZH = {"member_no": "序号", "name": "姓名", "village_code": "所在村（社区）代码"}
HEADER_SEARCH_ROWS = 10
MAX_ROWS = 200_000
MAX_MEMBER_NO = 32
# Zip bomb limits, checked on the archive's directory before anything is inflated. A real
# 200,000-row roster is about 100 MB of sheet XML at ratios of 10-30.
MAX_UNCOMPRESSED = 1 << 30
MAX_RATIO = 200
RATIO_FROM_BYTES = 1 << 20  # tiny members may compress absurdly well; they cannot hurt
ANSWER_ROWS = 2_000  # rows (and errors, warnings) listed in one answer

EXCEL_TEXT_HINT_ZH = ("Excel 把长数字变成了科学计数法，原来的数字已经丢失。请在 Excel 中把这一列设置为"
                      "“文本”格式并重新填写，或从原系统导出时选择“文本”，再导入")
EXCEL_TEXT_HINT_EN = ("Excel turned the long number into scientific notation and its digits are lost: "
                      "format the column as Text in Excel and enter the numbers again (or export them "
                      "as text from the source system), then import")

Status = Literal["ok", "refused", "warning"]


class RosterFormatError(ValueError):
    """The file as a whole cannot be read (not a roster, unknown encoding, no header)."""

    def __init__(self, zh: str, en: str, code: str = "bad_roster",
                 details: dict[str, object] | None = None) -> None:
        super().__init__(en)
        self.zh = zh
        self.code = code
        self.details = {"reason_zh": zh, **(details or {})}


@dataclass(frozen=True)
class MemberRow:
    member_no: str
    name: str
    village_code: str
    sex: str
    ethnicity: str
    born: str | None  # YYYY-MM-DD, or YYYY-MM when the roster gives only year and month
    joined: str | None
    branch: str
    category: str
    phone: str


@dataclass(frozen=True)
class RowResult:
    """What one row does: `line` is its row number in the spreadsheet (the title rows and
    the header counted), `message` Chinese then English, empty when ok."""

    line: int
    member_no: str
    name: str
    village_code: str
    status: Status
    message: str


@dataclass
class CheckReport:
    """The result of reading the whole file; lists hold at most ANSWER_ROWS entries."""

    skipped_title_rows: int = 0
    accepted: int = 0  # rows ok or with a warning
    rejected: int = 0
    warned: int = 0
    rows: list[RowResult] = field(default_factory=list)
    errors: list[RowResult] = field(default_factory=list)
    warnings: list[RowResult] = field(default_factory=list)
    truncated: bool = False

    def add(self, result: RowResult) -> None:
        if result.status == "refused":
            self.rejected += 1
            _capped(self.errors, result)
        else:
            self.accepted += 1
            if result.status == "warning":
                self.warned += 1
                _capped(self.warnings, result)
        if not _capped(self.rows, result):
            self.truncated = True


def _capped(items: list[RowResult], item: RowResult) -> bool:
    if len(items) < ANSWER_ROWS:
        items.append(item)
        return True
    return False


def _msg(zh: str, en: str) -> str:
    return f"{zh} / {en}"


# --- reading cells from CSV, XLSX and XLS ---------------------------------------------


def _sniff_encoding(path: Path) -> str:
    """utf-8-sig, utf-8 or gb18030, checked over the whole file without holding it."""
    with open(path, "rb") as f:
        head = f.read(3)
    candidates = ["utf-8-sig"] if head == b"\xef\xbb\xbf" else ["utf-8", "gb18030"]
    for encoding in candidates:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with open(path, "rb") as f:
                while block := f.read(1 << 20):
                    decoder.decode(block)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    raise RosterFormatError(
        "文件既不是 UTF-8 也不是 GBK 编码的文本；请在表格软件中另存为 CSV 或 XLSX 后再导入",
        "the file is neither UTF-8 nor GBK text; save it from the spreadsheet as CSV or XLSX",
    )


def _csv_rows(path: Path) -> Iterator[list[str]]:
    encoding = _sniff_encoding(path)
    with open(path, encoding=encoding, newline="") as f:
        try:
            yield from csv.reader(f)
        except csv.Error as e:
            raise RosterFormatError("CSV 文件格式有误（引号不配对或含有空字符）",
                                    f"the CSV file is malformed ({e})") from None


def _number(value: float | int) -> str:
    """A number cell as the text a person typed. Excel keeps 15 significant digits: a
    longer number has lost digits, so it is shown as Excel shows it (scientific), which
    the row check refuses with the fix."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and not value.is_integer():
        return repr(value)
    if abs(value) >= 10**15:
        return f"{float(value):.5E}"
    return str(int(value))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float):
        return _number(value)
    return str(value)


def check_zip(path: Path) -> None:
    """Refuse an XLSX whose declared sizes are absurd, before anything is inflated."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise RosterFormatError("XLSX 文件已损坏，无法打开；请在 Excel 中重新保存后再导入",
                                "the XLSX file is damaged and cannot be opened; save it again "
                                "from Excel") from None
    if any(i.filename == "mimetype" for i in infos) or not any(
            i.filename.startswith("xl/") for i in infos):
        raise RosterFormatError(
            "这不是 Excel 表格（XLSX），可能是 WPS/LibreOffice 的 .ods 表格或 Word 文件；请用表格软件"
            "“另存为” .xlsx 或 CSV 后再导入",
            "this is not an Excel workbook (XLSX): perhaps an OpenDocument (.ods) spreadsheet or "
            "a Word file; save it as .xlsx or CSV from the spreadsheet program, then import")
    total = sum(i.file_size for i in infos)
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FROM_BYTES and ratio > MAX_RATIO:
            _bomb(f"压缩比 {ratio:.0f}:1", f"a member compresses {ratio:.0f}:1")
    if total > MAX_UNCOMPRESSED:
        _bomb(f"解压后 {total >> 20} MB", f"it would unpack to {total >> 20} MB")


def _bomb(zh: str, en: str) -> None:
    raise RosterFormatError(
        f"表格解压后过大或压缩比异常（{zh}），为安全起见未打开",
        f"the spreadsheet was not opened: {en}, more than any roster needs (a zip bomb?); "
        "check the file, or split the roster into several files",
        code="roster_too_big", details={"detail": zh},
    )


def _xlsx_rows(path: Path) -> Iterator[list[str]]:
    check_zip(path)
    import openpyxl  # only needed for spreadsheets

    with open(path, "rb") as fh:  # a file object: openpyxl judges a path by its suffix
        try:
            book = openpyxl.load_workbook(fh, read_only=True, data_only=True)
        except Exception:
            raise RosterFormatError("XLSX 文件无法打开；请在 Excel 中重新保存后再导入",
                                    "the XLSX file cannot be opened; save it again from Excel") from None
        try:
            sheet = book.worksheets[0]
            for values in sheet.iter_rows(values_only=True):
                yield [_cell(v) for v in values]
        finally:
            book.close()


def _xls_rows(path: Path) -> Iterator[list[str]]:
    import xlrd  # type: ignore[import-untyped]

    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
    except Exception:
        raise RosterFormatError(
            "这个 Excel 97-2003 (.xls) 文件无法读取；请在 Excel 中“另存为” .xlsx 格式后再导入",
            "this Excel 97-2003 (.xls) workbook cannot be read; open it in Excel and save it as "
            ".xlsx, then import that",
        ) from None
    try:
        sheet = book.sheet_by_index(0)
        for r in range(sheet.nrows):
            out = []
            for c in sheet.row(r):
                if c.ctype == xlrd.XL_CELL_DATE:
                    try:
                        out.append(_cell(xlrd.xldate_as_datetime(c.value, book.datemode)))
                    except (ValueError, OverflowError):
                        out.append(str(c.value))
                elif c.ctype == xlrd.XL_CELL_NUMBER:
                    out.append(_number(c.value))
                elif c.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                    out.append("")
                else:
                    out.append(str(c.value))
            yield out
    finally:
        book.release_resources()


OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def read_rows(path: Path) -> Iterator[list[str]]:
    """The file's rows as text cells, whatever its format."""
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        raise RosterFormatError("文件是空的", "the file is empty")
    if head.startswith(b"PK\x03\x04"):
        return _xlsx_rows(path)
    if head == OLE2_MAGIC:
        return _xls_rows(path)
    return _csv_rows(path)


# --- the header ----------------------------------------------------------------------


def _fields(row: list[str]) -> list[str | None]:
    return [HEADERS.get(normalize_code(cell)) for cell in row]


def find_header(rows: Iterator[list[str]]) -> tuple[list[str | None], int]:
    """The header's fields and its row number; RosterFormatError naming missing columns."""
    best: list[str | None] = []
    for number, row in enumerate(rows, start=1):
        fields = _fields(row)
        if all(f in fields for f in REQUIRED):
            return fields, number
        if sum(f is not None for f in fields) > sum(f is not None for f in best):
            best = fields
        if number >= HEADER_SEARCH_ROWS:
            break
    if not best:
        raise RosterFormatError(
            f"前 {HEADER_SEARCH_ROWS} 行中找不到表头（序号、姓名、所在村（社区）代码）；"
            "请按全县统一的花名册格式导出",
            f"no header (序号, 姓名, 所在村（社区）代码) in the first {HEADER_SEARCH_ROWS} rows; "
            "export the roster with the county's standard columns",
        )
    missing = "、".join(REQUIRED_ZH[m] for m in REQUIRED if m not in best)
    raise RosterFormatError(
        f"表头缺少这些列：{missing}；请按全县统一的花名册格式导出",
        f"the header lacks the column(s) {missing}; export the roster with the county's "
        "standard columns",
    )


# --- rows ----------------------------------------------------------------------------


_FULL_DATE = re.compile(r"^([0-9]{4})\s*[-/.年]\s*([0-9]{1,2})\s*[-/.月]\s*([0-9]{1,2})\s*日?$")
_YEAR_MONTH = re.compile(r"^([0-9]{4})\s*[-/.年]\s*([0-9]{1,2})\s*月?$")
_COMPACT = re.compile(r"^([0-9]{4})([0-9]{2})([0-9]{2})?$")


def parse_date(value: str) -> str | None:
    """`1965-03-02`, `1965/3/2`, `1965年3月2日`, `19650302` -> `1965-03-02`; `1965.03`,
    `1966年5月`, `196503` -> `1965-03`; empty -> None. ValueError otherwise."""
    text = unicodedata.normalize("NFKC", value).strip().split(" ")[0]
    if not text:
        return None
    if m := _FULL_DATE.match(text) or _COMPACT.match(text):
        if m[3] is not None:
            return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        return _year_month(m[1], m[2])
    if m := _YEAR_MONTH.match(text):
        return _year_month(m[1], m[2])
    raise ValueError(value)


def _year_month(year: str, month: str) -> str:
    y, mo = int(year), int(month)
    if not (1900 <= y <= 2100 and 1 <= mo <= 12):
        raise ValueError(f"{year}-{month}")
    return f"{y:04d}-{mo:02d}"


DATE_NAMES = {"born": ("出生日期", "date of birth"), "joined": ("入党日期", "date of joining")}


def _row(
    line: int, raw: list[str], fields: list[str | None], villages: set[str], seen: Staging,
    elsewhere: Set[str],
) -> tuple[RowResult, MemberRow | None]:
    rec: dict[str, str] = {}
    for i, f in enumerate(fields):
        if f and i < len(raw):
            rec[f] = unicodedata.normalize("NFKC", raw[i]).strip()
    no_raw, code_raw = rec.get("member_no", ""), rec.get("village_code", "")
    no, code, name = normalize_code(no_raw), normalize_code(code_raw), rec.get("name", "")

    def refused(zh: str, en: str) -> tuple[RowResult, None]:
        return RowResult(line, no, name, code, "refused", _msg(zh, en)), None

    if any("\x00" in value for value in rec.values()):
        # a damaged export; no database stores the NUL character in text
        return refused("这一行含有空字符（NUL），可能是文件已损坏；请在表格软件中检查后重新导出",
                       "the row holds a NUL character (a damaged file?); check it in the "
                       "spreadsheet and export it again")
    if not no:
        return refused("序号为空", "序号 (member number) is empty")
    if is_scientific(no):
        return refused(f"序号 {no} 是科学计数法。{EXCEL_TEXT_HINT_ZH}",
                       f"序号 (member number) {no} is in scientific notation. {EXCEL_TEXT_HINT_EN}")
    if len(no) > MAX_MEMBER_NO or not no.isprintable():
        return refused(f"序号超过 {MAX_MEMBER_NO} 个字符或含有不可见字符",
                       f"序号 (member number) is longer than {MAX_MEMBER_NO} characters or has "
                       "invisible characters")
    if (first := seen.line(no)) is not None:
        return refused(f"序号 {no} 重复：第 {first} 行和第 {line} 行是同一个序号，只保留了第 "
                       f"{first} 行",
                       f"序号 {no} appears again: lines {first} and {line} have the same number; "
                       f"line {first} was kept (first on line {first})")
    if not name:
        return refused("姓名为空", "姓名 (name) is empty")
    if not code:
        return refused("所在村（社区）代码为空", "所在村（社区）代码 (village code) is empty")
    if is_scientific(code):
        return refused(f"村（社区）代码 {code} 是科学计数法。{EXCEL_TEXT_HINT_ZH}",
                       f"the village code {code} is in scientific notation. {EXCEL_TEXT_HINT_EN}")
    if code not in villages:
        return refused(f"村（社区）代码 {code} 不是本县的村（社区）",
                       f"village code {code} is not a village of this county")
    if no in elsewhere:
        return refused(f"序号 {no} 是外县的党员，本县不能导入或修改",
                       f"序号 {no} is a member of another county; a county's account cannot "
                       "import or change it")
    sex = rec.get("sex", "")
    if sex and sex not in ("男", "女"):
        return refused(f"性别“{sex}”只能是“男”或“女”", f"性别 (sex) {sex!r} is not 男 or 女")
    warnings: list[str] = []
    dates: dict[str, str | None] = {}
    for key, (zh, en) in DATE_NAMES.items():
        try:
            dates[key] = parse_date(rec.get(key, ""))
        except ValueError:
            dates[key] = None
            warnings.append(_msg(f"{zh}“{rec[key]}”无法识别，未导入这个日期（写成 1965-03-02 或 "
                                 "1965.03）", f"{en} {rec[key]!r} is not a date like 1965-03-02 or "
                                 "1965.03; the date was left out, the member imported"))
    phone = normalize_code(rec.get("phone", ""))
    if is_scientific(phone):
        warnings.append(_msg("联系电话是科学计数法，未导入这个号码",
                             "the phone number is in scientific notation; it was left out"))
        phone = ""
    member = MemberRow(
        member_no=no, name=name, village_code=code, sex=sex,
        ethnicity=rec.get("ethnicity", ""), born=dates["born"], joined=dates["joined"],
        branch=rec.get("branch", ""), category=rec.get("category", ""), phone=phone[:32],
    )
    seen.add(member, line)
    status: Status = "warning" if warnings else "ok"
    return RowResult(line, no, name, code, status, "；".join(warnings)), member


def scan(
    path: Path, villages: set[str], staging: Path, elsewhere: Set[str] = frozenset(),
) -> tuple[int, Iterator[tuple[RowResult, MemberRow | None]]]:
    """(title rows skipped, each data row's result and member), staging accepted rows in
    the file `staging`; rows naming a village not in `villages`, or a member number in
    `elsewhere` (members the account may not change), are refused. Reads the header now;
    RosterFormatError for a file that cannot be read or has more than MAX_ROWS rows."""
    rows = read_rows(path)
    fields, header_line = find_header(rows)

    def results() -> Iterator[tuple[RowResult, MemberRow | None]]:
        from server.queries.staging import Staging  # it imports MemberRow from here

        seen = Staging(staging)
        try:
            count = 0
            for line, raw in enumerate(rows, start=header_line + 1):
                if not any(cell.strip() for cell in raw):
                    continue
                count += 1
                if count > MAX_ROWS:
                    raise RosterFormatError(
                        f"花名册超过 {MAX_ROWS} 行；请分成几个文件导入",
                        f"the roster has more than {MAX_ROWS} rows; import it in several files")
                yield _row(line, raw, fields, villages, seen, elsewhere)
        finally:
            seen.close()

    return header_line - 1, results()


def check(path: Path, villages: set[str], staging: Path, elsewhere: Set[str] = frozenset()
          ) -> CheckReport:
    """Read the whole file and say what each row would do; stage the accepted rows in
    the file `staging` for `store()` (and `count_new()`); see `scan()`."""
    skipped, results = scan(path, villages, staging, elsewhere)
    report = CheckReport(skipped_title_rows=skipped)
    for result, _member in results:
        report.add(result)
    return report


def store(conn: Connection, staging: Path) -> tuple[int, int]:
    """Upsert the rows `check()` staged, on the writer's connection, in its one
    transaction; returns (added, updated)."""
    from server.queries import members as mq
    from server.queries.staging import staged_members

    before = mq.count(conn)
    stored = mq.upsert_stream(conn, staged_members(staging), to_db(utcnow()))
    added = mq.count(conn) - before
    return added, stored - added


_KNOWN = text("SELECT COUNT(*) FROM members WHERE member_no IN :numbers").bindparams(
    bindparam("numbers", expanding=True))


def staged_numbers(staging: Path) -> Iterator[str]:
    """The member numbers `check()` staged (blocking, streaming)."""
    from server.queries.staging import staged_members

    return (m.member_no for m in staged_members(staging))


def count_new(conn: Connection, staging: Path) -> int:
    """How many of the rows `check()` staged have a member number not yet a member
    (blocking: run it as a database read)."""
    from server.queries.staging import staged_members

    staged = (m.member_no for m in staged_members(staging))
    new = 0
    while numbers := list(islice(staged, 500)):
        new += len(numbers) - int(conn.execute(_KNOWN, {"numbers": numbers}).scalar_one())
    return new

"""Batch application files (报盘文件): the 制卡明细表 template, reading, and checking.

An employer's handler brings a card list (xlsx or csv, columns below) and a
folder of photos and identity scans. Every row is checked with **all** its
problems at once (the one-time notice, row by row), and the problems are
written to an xlsx the employer can correct and bring back.

Columns (the header row of the template, in this order):

====================  ===========================================  =========
column                meaning                                      required
====================  ===========================================  =========
序号 (No.)             row number the employer uses                 yes
姓名 (AAC003)          name                                         yes
公民身份号码 (AAC002)  18-digit resident identity number            yes
联系电话 (Phone)       mobile or fixed-line number                  no
通讯地址 (Address)     postal address                               no
照片文件 (Photo)       file name of the photo in the folder         adults
证件扫描文件 (Scan)    ID card scan (adults) or household register  yes
                       page (minors)
民族 (Ethnicity)       GB 3304 code, two digits (01 汉族 ... 56,     to submit
                       97 其他, 98 外国血统中国籍人士)
====================  ===========================================  =========

The ethnicity is written on the chip, so a row cannot be submitted for
production without it; lists made with the older seven-column template are
still read (and checked for everything else).
"""

from __future__ import annotations

import csv
import functools
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Final

from openpyxl import Workbook, load_workbook

from gateway.operations.completeness import Deficiency, check_photo
from gateway.people.identity import ADULT_AGE, age_on, sex_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import Path

__all__ = [
    "COLUMNS",
    "BatchFileError",
    "RowReport",
    "check_rows",
    "open_files",
    "read_rows",
    "sex_of",
    "write_report",
    "write_template",
]

COLUMNS: Final = (
    "序号 (No.)",
    "姓名 (AAC003)",
    "公民身份号码 (AAC002)",
    "联系电话 (Phone)",
    "通讯地址 (Address)",
    "照片文件 (Photo)",
    "证件扫描文件 (Scan)",
    "民族 (Ethnicity)",
)
#: Columns an older list may lack (read as empty).
OPTIONAL_COLUMNS: Final = 1
_KEYS: Final = ("no", "name", "id_number", "phone", "address", "photo", "scan", "ethnicity")
MAX_SCAN_BYTES: Final = 5 * 1024 * 1024
_SCAN_SIGNATURES: Final = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"%PDF-")
#: GB 3304 ethnicity codes: 01-56, 97 (other), 98 (foreign origin, Chinese nationality).
ETHNICITIES: Final = frozenset({f"{n:02d}" for n in range(1, 57)} | {"97", "98"})
_PHONE: Final = re.compile(r"^\+?[0-9-]{5,20}$")


class BatchFileError(ValueError):
    """The file itself cannot be read as a card list (not a row problem)."""


@dataclass(slots=True)
class RowReport:
    """One row of the card list and everything wrong with it."""

    line: int  # row number in the file (the header is line 1)
    values: dict[str, str]
    problems: list[tuple[str, Deficiency]] = field(default_factory=list)  # (column, problem)

    @property
    def ok(self) -> bool:
        """True when the row can be submitted."""
        return not self.problems


def write_template(path: Path) -> None:
    """Write the empty template with its header and an instructions sheet."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # noqa: S101 - a new workbook has one sheet
    sheet.title = "制卡明细表"
    sheet.append(list(COLUMNS))
    notes = book.create_sheet("填写说明 Instructions")
    for line in (__doc__ or "").splitlines():
        notes.append([line])
    book.save(path)


def read_rows(path: Path) -> list[RowReport]:
    """Read an xlsx or csv card list (header row first) into rows."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".xlsx":
            table = _read_xlsx(path)
        elif suffix == ".csv":
            text = path.read_bytes().decode("utf-8-sig")
            table = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text))]
        else:
            raise BatchFileError(f"{path.name}: expected .xlsx or .csv")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        if isinstance(exc, BatchFileError):
            raise
        raise BatchFileError(f"{path.name} cannot be read: {exc}") from None
    if not table or not _is_header(table[0]):
        raise BatchFileError(f"{path.name}: the header row is not the template's")
    rows = []
    width = len(_KEYS)
    blank = [""] * width
    for number, cells in enumerate(table[1:], start=2):
        if not any(cells):
            continue
        padded = cells[:width] if len(cells) >= width else [*cells, *blank][:width]
        rows.append(RowReport(line=number, values=dict(zip(_KEYS, padded, strict=True))))
    return rows


def _read_xlsx(path: Path) -> list[list[str]]:
    """The first sheet's cells as stripped text (read-only, values only: fast on big lists)."""
    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        width = len(_KEYS)
        return [
            [
                "" if cell is None else cell.strip() if isinstance(cell, str) else _text(cell)
                for cell in row[:width]
            ]
            for row in sheet.iter_rows(values_only=True)
        ]
    finally:
        book.close()


def _text(value: object) -> str:
    """A non-text cell as the employer meant it (``12.0`` typed as a number is ``12``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _is_header(cells: list[str]) -> bool:
    given = [c.split(" ")[0] for c in cells[: len(COLUMNS)]]
    wanted = [c.split(" ")[0] for c in COLUMNS]
    required = len(COLUMNS) - OPTIONAL_COLUMNS
    if given[:required] != wanted[:required]:
        return False
    return all(not g or g == w for g, w in zip(given[required:], wanted[required:], strict=False))


def open_files(source: Path) -> dict[str, Callable[[], bytes]]:
    """The photos and scans of a folder or a zip file, by file name (read on demand).

    Raises:
        BatchFileError: ``source`` is neither a folder nor a readable zip file.
    """
    if source.is_dir():
        return {p.name: p.read_bytes for p in source.iterdir() if p.is_file()}
    try:
        archive = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BatchFileError(f"{source.name}: not a folder or zip file ({exc})") from None
    found: dict[str, Callable[[], bytes]] = {}
    for info in archive.infolist():
        if not info.is_dir():
            found[PurePosixPath(info.filename).name] = functools.partial(archive.read, info)
    return found


def _problem(code: str, zh: str, en: str) -> Deficiency:
    return Deficiency(code, zh, en)


_WEIGHTS: Final = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK: Final = "10X98765432"
_ID_SHAPE: Final = re.compile(r"^[1-9][0-9]{16}[0-9X]$")


def _birth_date(id_number: str) -> date | None:
    """The birth date of a well-formed identity number with a valid check digit, else None.

    The same rules as ``stdnum.cn.ric`` (shape, check digit, a real date),
    without its generic compacting: this runs once per row of big lists.
    """
    if not _ID_SHAPE.match(id_number):
        return None
    total = sum(int(c) * w for c, w in zip(id_number, _WEIGHTS, strict=False))
    if _CHECK[total % 11] != id_number[17]:
        return None
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return None


def check_rows(
    rows: Iterable[RowReport],
    files: Mapping[str, Callable[[], bytes]],
    today: date,
    *,
    strict: bool = False,
) -> list[RowReport]:
    """Check every row; ``files`` maps a file name to a reader of its bytes.

    Only the files a row names are read (photos are checked on the image).
    ``strict`` adds what production and the archive need: the ethnicity code
    (a given code is always checked), and scans that are JPEG, PNG or PDF of
    at most 5 MB.
    """
    checked = list(rows)
    seen: dict[str, int] = {}
    for row in checked:
        values = row.values
        problems = row.problems
        if not values["name"]:
            problems.append(("name", _problem("missing:name", "缺少姓名", "Name missing")))
        id_number = values["id_number"].upper()
        adult = True
        birth = _birth_date(id_number)
        if birth is None:
            problems.append(
                ("id_number", _problem("invalid:id-number", "身份证号码无效", "Invalid ID number"))
            )
        else:
            adult = age_on(birth, today) >= ADULT_AGE
            first = seen.setdefault(id_number, row.line)
            if first != row.line:
                problems.append(
                    (
                        "id_number",
                        _problem(
                            "duplicate:id-number",
                            f"与第{first}行身份证号码重复",
                            f"Same ID number as line {first}",
                        ),
                    )
                )
        if values["phone"] and not _PHONE.match(values["phone"]):
            problems.append(("phone", _problem("invalid:phone", "联系电话格式错误", "Bad phone")))
        _check_file(row, "photo", files, required=adult, photo=True)
        _check_file(row, "scan", files, required=True, photo=False, strict=strict)
        ethnicity = values.get("ethnicity", "")
        if ethnicity and ethnicity.zfill(2) not in ETHNICITIES:
            problems.append(
                (
                    "ethnicity",
                    _problem("invalid:ethnicity", "民族代码无效（GB 3304）", "Bad ethnicity code"),
                )
            )
        elif not ethnicity and strict:
            problems.append(
                ("ethnicity", _problem("missing:ethnicity", "缺少民族代码", "Ethnicity missing"))
            )
    return checked


def _check_file(  # noqa: PLR0913 - one flag per rule
    row: RowReport,
    column: str,
    files: Mapping[str, Callable[[], bytes]],
    *,
    required: bool,
    photo: bool,
    strict: bool = False,
) -> None:
    name = row.values[column]
    label_zh, label_en = ("照片", "photo") if photo else ("证件扫描件", "ID scan")
    if not name:
        if required:
            row.problems.append(
                (column, _problem(f"missing:{column}", f"缺少{label_zh}", f"{label_en} missing"))
            )
        return
    if name not in files:
        row.problems.append(
            (
                column,
                _problem(
                    f"missing-file:{column}",
                    f"文件夹中没有{label_zh}文件 {name}",
                    f"{label_en} file {name} not in the folder",
                ),
            )
        )
        return
    if photo:
        row.problems.extend((column, item) for item in check_photo(files[name]()))
    elif strict:
        data = files[name]()
        if len(data) > MAX_SCAN_BYTES or not data.startswith(_SCAN_SIGNATURES):
            row.problems.append(
                (
                    column,
                    _problem(
                        f"invalid-file:{column}",
                        f"{label_zh}须为不超过5MB的JPG、PNG或PDF文件",
                        f"{label_en} must be JPEG, PNG or PDF of at most 5 MB",
                    ),
                )
            )


def write_report(path: Path, rows: Iterable[RowReport]) -> int:
    """Write every problem (line, column, code, zh, en) to an xlsx; return how many."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # noqa: S101 - a new workbook has one sheet
    sheet.title = "问题清单 Problems"
    sheet.append(["行号 Line", "序号 No.", "列 Column", "代码 Code", "说明", "Explanation"])
    count = 0
    for row in rows:
        for column, problem in row.problems:
            sheet.append(
                [
                    row.line,
                    row.values["no"],
                    column,
                    problem.code,
                    problem.title_zh,
                    problem.title_en,
                ]
            )
            count += 1
    book.save(path)
    return count

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
====================  ===========================================  =========
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from openpyxl import Workbook, load_workbook
from stdnum.cn import ric

from gateway.business.completeness import Deficiency, check_photo

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from datetime import date
    from pathlib import Path

__all__ = [
    "COLUMNS",
    "BatchFileError",
    "RowReport",
    "check_rows",
    "read_rows",
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
)
_KEYS: Final = ("no", "name", "id_number", "phone", "address", "photo", "scan")
ADULT_AGE: Final = 18
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
            book = load_workbook(path, read_only=True, data_only=True)
            sheet = book.worksheets[0]
            table = [
                ["" if cell is None else str(cell).strip() for cell in row]
                for row in sheet.iter_rows(values_only=True)
            ]
            book.close()
        elif suffix == ".csv":
            text = path.read_bytes().decode("utf-8-sig")
            table = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text))]
        else:
            raise BatchFileError(f"{path.name}: expected .xlsx or .csv")
    except (OSError, UnicodeDecodeError, ValueError, KeyError) as exc:
        if isinstance(exc, BatchFileError):
            raise
        raise BatchFileError(f"{path.name} cannot be read: {exc}") from None
    if not table or [c.split(" ")[0] for c in table[0][: len(COLUMNS)]] != [
        c.split(" ")[0] for c in COLUMNS
    ]:
        raise BatchFileError(f"{path.name}: the header row is not the template's")
    rows = []
    for number, cells in enumerate(table[1:], start=2):
        if not any(cells):
            continue
        padded = [*cells, *[""] * len(_KEYS)][: len(_KEYS)]
        rows.append(RowReport(line=number, values=dict(zip(_KEYS, padded, strict=True))))
    return rows


def _problem(code: str, zh: str, en: str) -> Deficiency:
    return Deficiency(code, zh, en)


def check_rows(
    rows: Iterable[RowReport], files: Mapping[str, Callable[[], bytes]], today: date
) -> list[RowReport]:
    """Check every row; ``files`` maps a file name to a reader of its bytes."""
    checked = list(rows)
    seen: dict[str, int] = {}
    for row in checked:
        values = row.values
        if not values["name"]:
            row.problems.append(("name", _problem("missing:name", "缺少姓名", "Name missing")))
        id_number = values["id_number"].upper()
        adult = True
        if not ric.is_valid(id_number):
            row.problems.append(
                ("id_number", _problem("invalid:id-number", "身份证号码无效", "Invalid ID number"))
            )
        else:
            birth = ric.get_birth_date(id_number)
            age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
            adult = age >= ADULT_AGE
            if id_number in seen:
                row.problems.append(
                    (
                        "id_number",
                        _problem(
                            "duplicate:id-number",
                            f"与第{seen[id_number]}行身份证号码重复",
                            f"Same ID number as line {seen[id_number]}",
                        ),
                    )
                )
            else:
                seen[id_number] = row.line
        if values["phone"] and not _PHONE.match(values["phone"]):
            row.problems.append(
                ("phone", _problem("invalid:phone", "联系电话格式错误", "Bad phone"))
            )
        _check_file(row, "photo", files, required=adult, photo=True)
        _check_file(row, "scan", files, required=True, photo=False)
    return checked


def _check_file(
    row: RowReport,
    column: str,
    files: Mapping[str, Callable[[], bytes]],
    *,
    required: bool,
    photo: bool,
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

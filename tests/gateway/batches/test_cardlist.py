import csv
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook
from stdnum.cn import ric

from gateway.batches.cardlist import (
    COLUMNS,
    BatchFileError,
    check_rows,
    read_rows,
    write_report,
    write_template,
)
from tests.gateway.operations.test_catalogue import photo

TODAY = date(2026, 11, 23)
ADULT = "11010519491231002X"
MINOR = "1101052015010100" + "1" + ric.calc_check_digit("110105201501010010")


def files(named: dict[str, bytes]) -> dict[str, Callable[[], bytes]]:
    """A folder of files by name."""

    def reader(data: bytes) -> Callable[[], bytes]:
        return lambda: data

    return {name: reader(data) for name, data in named.items()}


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    """A csv card list with the template's header."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


def test_template_has_the_documented_header(tmp_path: Path) -> None:
    """The template's first sheet starts with the documented columns; it reads as empty."""
    path = tmp_path / "template.xlsx"
    write_template(path)
    book = load_workbook(path)
    assert [c.value for c in book.worksheets[0][1]] == list(COLUMNS)
    assert read_rows(path) == []


def test_every_problem_of_every_row_at_once(tmp_path: Path) -> None:
    """Each row lists all its problems; good rows have none; duplicates name the first line."""
    path = write_csv(
        tmp_path / "list.csv",
        [
            ["1", "张三", ADULT, "13800000000", "乌鲁木齐", "a.jpg", "a-id.jpg"],
            ["2", "", "123", "bad phone!", "", "", ""],
            ["3", "李四", ADULT, "", "", "missing.jpg", "b-id.jpg"],
            ["4", "小明", MINOR, "", "", "", "m-hukou.jpg"],
        ],
    )
    rows = check_rows(
        read_rows(path),
        files({"a.jpg": photo(), "a-id.jpg": b"scan", "b-id.jpg": b"scan", "m-hukou.jpg": b"scan"}),
        TODAY,
    )
    assert rows[0].ok
    assert [p.code for _, p in rows[1].problems] == [
        "missing:name", "invalid:id-number", "invalid:phone", "missing:photo", "missing:scan",
    ]  # fmt: skip
    assert [p.code for _, p in rows[2].problems] == [
        "duplicate:id-number",
        "missing-file:photo",
    ]
    assert rows[3].ok  # a minor needs no photo


def test_photo_rules_checked_per_row(tmp_path: Path) -> None:
    """A row's photo is checked on the image itself."""
    path = write_csv(tmp_path / "l.csv", [["1", "张三", ADULT, "", "", "p.jpg", "s.jpg"]])
    [row] = check_rows(read_rows(path), files({"p.jpg": photo(dpi=72), "s.jpg": b"scan"}), TODAY)
    assert [p.code for _, p in row.problems] == ["photo:dpi"]


def test_report_lists_every_problem(tmp_path: Path) -> None:
    """The xlsx report has one line per problem with both languages."""
    path = write_csv(tmp_path / "l.csv", [["7", "", "x", "", "", "", ""]])
    rows = check_rows(read_rows(path), {}, TODAY)
    report = tmp_path / "report.xlsx"
    assert write_report(report, rows) == 4
    sheet = load_workbook(report).worksheets[0]
    lines = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert lines[0][:4] == [2, "7", "name", "missing:name"]
    assert all(line[4] and line[5] for line in lines)


@pytest.mark.parametrize("content", ["not,the,template\n1,2,3\n", ""])
def test_wrong_files_are_refused(tmp_path: Path, content: str) -> None:
    """A file that is not the template (or empty) is one clear error, not row problems."""
    path = tmp_path / "x.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BatchFileError, match="header row"):
        read_rows(path)
    with pytest.raises(BatchFileError, match=r"expected \.xlsx or \.csv"):
        read_rows(tmp_path / "x.txt")

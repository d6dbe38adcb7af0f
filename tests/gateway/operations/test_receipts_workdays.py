from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.operations.receipts import ReceiptNumber, ReceiptNumberError, make_receipt_number
from gateway.operations.workdays import CalendarError, WorkCalendar

NUMBER = make_receipt_number("652300", date(2026, 11, 23), 42)


def test_receipt_number_layout_round_trips() -> None:
    """The printed form parses back to the same region, day and sequence."""
    text = str(NUMBER)
    assert len(text) == 22
    assert text.startswith("SS65230020261123" + "00042")
    assert ReceiptNumber.parse(text) == NUMBER
    assert ReceiptNumber.parse(" ss" + text[2:].lower()) == NUMBER


@given(position=st.integers(min_value=2, max_value=21), digit=st.integers(0, 9))
def test_any_single_mistyped_digit_is_caught(position: int, digit: int) -> None:
    """Changing any one digit makes the number invalid."""
    text = str(NUMBER)
    if text[position] == str(digit):
        return
    typo = text[:position] + str(digit) + text[position + 1 :]
    with pytest.raises(ReceiptNumberError):
        ReceiptNumber.parse(typo)


@given(position=st.integers(min_value=2, max_value=20))
def test_any_adjacent_swap_is_caught(position: int) -> None:
    """Swapping two neighbouring different digits makes the number invalid."""
    text = str(NUMBER)
    if text[position] == text[position + 1]:
        return
    swapped = text[:position] + text[position + 1] + text[position] + text[position + 2 :]
    with pytest.raises(ReceiptNumberError):
        ReceiptNumber.parse(swapped)


@pytest.mark.parametrize(
    "bad", ["", "SS123", "XX652300202611230004270", "SS6523002026139900001" + "0"]
)
def test_malformed_receipt_numbers(bad: str) -> None:
    """Wrong shapes are refused with a reason."""
    with pytest.raises(ReceiptNumberError):
        ReceiptNumber.parse(bad)


def test_national_day_week_is_skipped() -> None:
    """Five working days from 30 Sep 2026 skip the National Day holiday."""
    calendar = WorkCalendar()
    assert not calendar.is_workday(date(2026, 10, 1))
    assert calendar.add_workdays(date(2026, 9, 30), 5) == date(2026, 10, 13)


def test_adjusted_weekend_workday_counts() -> None:
    """A weekend day made a working day (调休) counts; a plain Saturday does not."""
    calendar = WorkCalendar()
    assert calendar.is_workday(date(2026, 10, 10))  # Saturday worked after National Day
    assert not calendar.is_workday(date(2026, 11, 21))  # an ordinary Saturday


def test_unknown_year_is_an_error_until_the_file_adds_it(tmp_path: Path) -> None:
    """A year the library does not know fails loudly; the calendar file fills the gap."""
    with pytest.raises(CalendarError, match="no holiday table for 2027"):
        WorkCalendar().is_workday(date(2027, 1, 4))
    path = tmp_path / "calendar.toml"
    path.write_text("holidays = [2027-01-01]\nworkdays = [2027-01-04]\n", "utf-8")
    calendar = WorkCalendar.from_file(path)
    assert calendar.is_workday(date(2027, 1, 4))
    assert not calendar.is_workday(date(2027, 1, 1))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("holidays = ['x']", "list of dates"),
        ("weekends = []", "unknown keys"),
        ("holidays = [2027-01-01]\nworkdays = [2027-01-01]", "both holiday and workday"),
        ("holidays = [", "cannot read"),
    ],
)
def test_invalid_calendar_files(tmp_path: Path, text: str, match: str) -> None:
    """A bad calendar file is refused with what is wrong."""
    path = tmp_path / "calendar.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(CalendarError, match=match):
        WorkCalendar.from_file(path)


def test_workdays_between() -> None:
    """Working days are counted after the start, up to and including the end."""
    calendar = WorkCalendar()
    assert calendar.workdays_between(date(2026, 11, 20), date(2026, 11, 23)) == 1
    assert calendar.workdays_between(date(2026, 11, 23), date(2026, 11, 20)) == 0


def test_a_year_in_the_file_is_the_files_whole_year(tmp_path: Path) -> None:
    """The file's year: listed days as listed, every other day by the ordinary week."""
    path = tmp_path / "calendar.toml"
    path.write_text("holidays = [2027-01-01]\nworkdays = [2027-02-07]\n", "utf-8")
    calendar = WorkCalendar.from_file(path)
    assert calendar.is_workday(date(2027, 3, 1))  # a Monday nobody listed
    assert not calendar.is_workday(date(2027, 3, 6))  # a Saturday
    assert calendar.is_workday(date(2027, 2, 7))  # a Sunday worked instead
    # 30 working days from the fake clock's day reach into the file's year.
    assert calendar.add_workdays(date(2026, 11, 23), 30) == date(2027, 1, 5)
    with pytest.raises(CalendarError, match="no holiday table for 2028"):
        calendar.is_workday(date(2028, 1, 3))

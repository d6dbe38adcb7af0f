"""Working-day deadlines with China's public holidays and adjusted working days.

The State Council publishes each year's holidays and the weekend days that
become working days (调休). :mod:`chinese_calendar` carries the published
years; a calendar file (TOML, ``[calendar] file`` in the configuration) adds or
corrects days without a code change, for example when next year's table is
announced before a new release of the library::

    holidays = [2027-01-01, 2027-02-05]
    workdays = [2027-02-14]     # a Sunday worked instead

A year the file mentions (any day of it in either list) is the file's: its
other days follow the ordinary week (Monday to Friday work), as in a year
without any holiday. A date of a year that neither source knows is an error,
never a guess.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Final

import chinese_calendar  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["CalendarError", "WorkCalendar"]

SATURDAY: Final = 5  # date.weekday()


class CalendarError(Exception):
    """The calendar cannot say whether a day is a working day, or its file is invalid."""


@dataclass(frozen=True)
class WorkCalendar:
    """Working days: the published table, corrected by the extra holidays and workdays."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def from_file(cls, path: Path) -> WorkCalendar:
        """Load extra ``holidays`` and ``workdays`` (lists of TOML dates)."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise CalendarError(f"cannot read calendar file {path}: {exc}") from None
        unknown = set(data) - {"holidays", "workdays"}
        if unknown:
            raise CalendarError(f"{path}: unknown keys {sorted(unknown)}")
        lists = {}
        for key in ("holidays", "workdays"):
            values = data.get(key, [])
            if not isinstance(values, list) or not all(type(v) is date for v in values):
                raise CalendarError(f"{path}: {key} must be a list of dates (YYYY-MM-DD)")
            lists[key] = frozenset(values)
        overlap = lists["holidays"] & lists["workdays"]
        if overlap:
            raise CalendarError(f"{path}: days both holiday and workday: {sorted(overlap)}")
        return cls(holidays=lists["holidays"], workdays=lists["workdays"])

    @cached_property
    def years(self) -> frozenset[int]:
        """The years this calendar's own lists describe."""
        return frozenset(day.year for day in self.holidays | self.workdays)

    def is_workday(self, day: date) -> bool:
        """Tell whether ``day`` is a working day."""
        if day in self.holidays:
            return False
        if day in self.workdays:
            return True
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year in self.years:
                return day.weekday() < SATURDAY
            raise CalendarError(
                f"no holiday table for {day.year}: add the year to the calendar file"
            ) from None

    def add_workdays(self, start: date, count: int) -> date:
        """The day ``count`` working days after ``start`` (``start`` itself not counted)."""
        if count < 0:
            raise ValueError("count must be >= 0")
        day = start
        while count:
            day += timedelta(days=1)
            if self.is_workday(day):
                count -= 1
        return day

    def workdays_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 if end <= start)."""
        days = 0
        day = start
        while day < end:
            day += timedelta(days=1)
            days += self.is_workday(day)
        return days

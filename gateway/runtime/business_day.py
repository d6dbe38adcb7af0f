"""The business day: branches work on China Standard Time, whatever the host's zone.

Receipt numbers, deadlines, the audit's daily checkpoints, the archive's months and
the branch reports' "today" all count days here.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

__all__ = ["BUSINESS_TZ", "FIRST_DAY", "LAST_DAY", "day_start", "local_day", "parse_day"]

#: Business days end at midnight in China Standard Time.
BUSINESS_TZ: Final = ZoneInfo("Asia/Shanghai")
#: The first business day a request may name (earlier ones are typing errors), and the
#: day none may reach (a day's end must still be a date).
FIRST_DAY: Final = date(2000, 1, 1)
LAST_DAY: Final = date(9999, 1, 1)


def local_day(moment: datetime) -> date:
    """The business day (Beijing time) of ``moment``."""
    return moment.astimezone(BUSINESS_TZ).date()


def day_start(day: date, *, after: int = 0) -> datetime:
    """The moment business day ``day`` (plus ``after`` days) begins, in Beijing time."""
    return datetime.combine(day + timedelta(days=after), time(0), BUSINESS_TZ)


_DAY: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(text: str) -> date | None:
    """``YYYY-MM-DD`` as a business day from :data:`FIRST_DAY` on; ``None`` when it is not one."""
    if _DAY.fullmatch(text) is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if FIRST_DAY <= day < LAST_DAY else None

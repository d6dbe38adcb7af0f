"""The business day: branches work on China Standard Time, whatever the host's zone.

Receipt numbers, deadlines, the audit's daily checkpoints, the archive's months and
the branch reports' "today" all count days here.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from datetime import date

__all__ = ["BUSINESS_TZ", "day_start", "local_day"]

#: Business days end at midnight in China Standard Time.
BUSINESS_TZ: Final = ZoneInfo("Asia/Shanghai")


def local_day(moment: datetime) -> date:
    """The business day (Beijing time) of ``moment``."""
    return moment.astimezone(BUSINESS_TZ).date()


def day_start(day: date, *, after: int = 0) -> datetime:
    """The moment business day ``day`` (plus ``after`` days) begins, in Beijing time."""
    return datetime.combine(day + timedelta(days=after), time(0), BUSINESS_TZ)

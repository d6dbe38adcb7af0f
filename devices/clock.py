"""The clock every timer in the daemon goes through.

Code that waits or timestamps takes a :class:`Clock`; only the composition root
(``gateway``) builds a :class:`SystemClock`. Tests pass a fake clock whose
``sleep`` advances time instead of waiting, so no test sleeps for real.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Monotonic time for intervals, wall time for records, and an awaitable sleep."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for intervals and deadlines)."""
        ...

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware, in UTC (for records)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (or, on a fake clock, advance time by that much)."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``datetime.now(UTC)`` and ``asyncio.sleep``."""

    def monotonic(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(seconds)

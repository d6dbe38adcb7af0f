"""Test doubles shared by the tests: a clock that never sleeps for real."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta


class FakeClock:
    """A :class:`devices.clock.Clock` driven by the test.

    With ``autojump`` (the default) every ``sleep`` advances time at once and
    yields to the loop once. Without it, sleepers wait until :meth:`advance`
    moves time past their deadline.
    """

    def __init__(
        self,
        *,
        autojump: bool = True,
        start: float = 1000.0,
        wall: datetime = datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
    ) -> None:
        """Start at monotonic ``start`` and wall time ``wall``."""
        self.autojump = autojump
        self._start = start
        self._now = start
        self._wall = wall
        self.sleeps: list[float] = []
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []
        self._changed = asyncio.Event()

    def monotonic(self) -> float:
        """Current fake monotonic time."""
        return self._now

    def now(self) -> datetime:
        """Current fake wall time (moves with the monotonic time)."""
        return self._wall + timedelta(seconds=self._now - self._start)

    async def sleep(self, seconds: float) -> None:
        """Record the sleep; advance at once (autojump) or wait for :meth:`advance`."""
        self.sleeps.append(seconds)
        if self.autojump:
            self._now += seconds
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._now + seconds, future))
        self._changed.set()
        try:
            await future
        finally:
            self._waiters = [(d, f) for d, f in self._waiters if f is not future]

    async def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        self._now += seconds
        for deadline, future in list(self._waiters):
            if deadline <= self._now and not future.done():
                future.set_result(None)
        for _ in range(5):
            await asyncio.sleep(0)

    async def wait_for_sleepers(self, count: int = 1) -> None:
        """Wait (on the loop, not on time) until ``count`` tasks sleep on this clock."""
        while len(self._waiters) < count:
            self._changed.clear()
            await self._changed.wait()

"""A circuit breaker on the injected clock: stop hammering a dead upstream system.

Closed: calls go through; ``failure_threshold`` transient failures in a row
open it. Open: calls are refused at once until ``reset_timeout`` seconds have
passed. Then half-open: one trial call goes through; its success closes the
breaker, its failure opens it again for another ``reset_timeout``. A trial
that never reports (cancelled) stops blocking after ``reset_timeout``. So
recovery is automatic: the next call after the timeout is the probe.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from devices.clock import Clock

__all__ = ["BreakerState", "CircuitBreaker"]

log = structlog.get_logger(__name__)


class BreakerState(StrEnum):
    """Where the breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts transient failures of one upstream system and gates calls to it."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
    ) -> None:
        """Start closed.

        Raises:
            ValueError: A threshold below 1 or a non-positive timeout.
        """
        if failure_threshold < 1 or reset_timeout <= 0:
            raise ValueError("failure_threshold >= 1 and reset_timeout > 0 are required")
        self.name = name
        self._clock = clock
        self._threshold = failure_threshold
        self._reset_timeout = reset_timeout
        self._failures = 0
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._trial_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past its timeout reads as half-open)."""
        if self._state is BreakerState.OPEN and self.retry_after() == 0:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def closed(self) -> bool:
        """True while calls go through normally."""
        return self._state is BreakerState.CLOSED

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a trial through (0 when it would now)."""
        if self._state is BreakerState.CLOSED:
            return 0.0
        if self._state is BreakerState.HALF_OPEN and self._trial_at is not None:
            return max(0.0, self._trial_at + self._reset_timeout - self._clock.monotonic())
        return max(0.0, self._opened_at + self._reset_timeout - self._clock.monotonic())

    def allow(self) -> bool:
        """Whether a call may go now; in half-open state it becomes the trial."""
        if self._state is BreakerState.CLOSED:
            return True
        if self.retry_after() > 0:
            return False
        self._state = BreakerState.HALF_OPEN
        self._trial_at = self._clock.monotonic()
        return True

    def record_success(self) -> None:
        """A call succeeded: close."""
        if self._state is not BreakerState.CLOSED:
            log.info("circuit_closed", upstream=self.name)
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._trial_at = None

    def record_failure(self) -> None:
        """A call failed transiently: count it; open at the threshold or after a failed trial."""
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
            if self._state is BreakerState.CLOSED:
                log.warning("circuit_opened", upstream=self.name, failures=self._failures)
            self._state = BreakerState.OPEN
            self._opened_at = self._clock.monotonic()
            self._trial_at = None

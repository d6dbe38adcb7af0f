"""The circuit breaker on a fake clock."""

from __future__ import annotations

import pytest

from gateway.upstream import BreakerState, CircuitBreaker
from tests.fakes import FakeClock


def _state(breaker: CircuitBreaker) -> BreakerState:
    """Read the state afresh (a property the type checker would otherwise narrow)."""
    return breaker.state


async def test_opens_at_threshold_and_recovers_through_one_trial() -> None:
    """Open after N failures; after the timeout one trial; closed on its success."""
    clock = FakeClock(autojump=False)
    breaker = CircuitBreaker("platform", clock, failure_threshold=2, reset_timeout=10)
    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert _state(breaker) is BreakerState.OPEN
    assert not breaker.allow()
    await clock.advance(10)
    assert _state(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # one trial at a time
    breaker.record_failure()  # the trial failed: open again
    assert breaker.retry_after() == 10
    await clock.advance(10)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.closed
    assert breaker.retry_after() == 0


async def test_lost_trial_stops_blocking() -> None:
    """A trial that never reports lets another through after the timeout."""
    clock = FakeClock(autojump=False)
    breaker = CircuitBreaker("bank", clock, failure_threshold=1, reset_timeout=5)
    breaker.record_failure()
    await clock.advance(5)
    assert breaker.allow()
    await clock.advance(5)
    assert breaker.allow()


def test_invalid_settings() -> None:
    """A zero threshold or timeout is refused."""
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker("x", FakeClock(), failure_threshold=0)

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.backoff import BackoffPolicy, backoff_delays


def take(n: int, policy: BackoffPolicy, seed: int = 7) -> list[float]:
    """The first ``n`` delays for ``policy`` with a seeded random source."""
    delays = backoff_delays(policy, random.Random(seed))
    return [next(delays) for _ in range(n)]


def test_delays_grow_then_stay_capped() -> None:
    """Ceilings double from initial up to maximum; each delay lies in [ceiling/2, ceiling]."""
    policy = BackoffPolicy(initial=1.0, maximum=8.0, factor=2.0)
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    for delay, ceiling in zip(take(6, policy), ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling


def test_same_seed_same_delays() -> None:
    """The injected random source makes the sequence reproducible."""
    policy = BackoffPolicy()
    assert take(10, policy, seed=3) == take(10, policy, seed=3)
    assert take(10, policy, seed=3) != take(10, policy, seed=4)


@pytest.mark.parametrize(
    ("initial", "maximum", "factor"), [(0, 1, 2), (-1, 1, 2), (2, 1, 2), (1, 2, 0.5)]
)
def test_invalid_policy_refused(initial: float, maximum: float, factor: float) -> None:
    """A policy that could spin or never back off is refused."""
    with pytest.raises(ValueError, match="invalid backoff policy"):
        BackoffPolicy(initial=initial, maximum=maximum, factor=factor)


@given(
    initial=st.floats(min_value=0.001, max_value=100),
    extra=st.floats(min_value=0, max_value=1000),
    factor=st.floats(min_value=1, max_value=10),
    seed=st.integers(),
)
def test_never_zero_never_above_maximum(
    initial: float, extra: float, factor: float, seed: int
) -> None:
    """Whatever the policy, no delay is zero and none exceeds the maximum."""
    policy = BackoffPolicy(initial=initial, maximum=initial + extra, factor=factor)
    for delay in take(30, policy, seed):
        assert 0 < delay <= policy.maximum

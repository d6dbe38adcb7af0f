"""Capped exponential backoff with jitter, as a pure generator.

The delays come from an injected :class:`random.Random`, so a test with a fixed
seed sees the same sequence every run, and the caller decides how to wait (on an
injected clock). Jitter keeps many branches that lost the same upstream from
reconnecting in lockstep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import random
    from collections.abc import Iterator

__all__ = ["BackoffPolicy", "backoff_delays"]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How retries space out.

    Attributes:
        initial: the ceiling of the first delay, in seconds.
        maximum: no delay is ever longer than this, in seconds.
        factor: each ceiling is this many times the previous one.
    """

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        """Refuse policies that would never back off or never stop growing."""
        if self.initial <= 0 or self.maximum < self.initial or self.factor < 1:
            msg = f"invalid backoff policy {self!r}: need 0 < initial <= maximum and factor >= 1"
            raise ValueError(msg)


def backoff_delays(policy: BackoffPolicy, rng: random.Random) -> Iterator[float]:
    """Yield retry delays forever: "equal jitter" over a capped exponential ceiling.

    The n-th delay is drawn uniformly from ``[ceiling/2, ceiling]`` where
    ``ceiling = min(maximum, initial * factor**n)``: never zero (so a crashing
    task cannot spin), never above ``maximum``, and spread out between callers.
    """
    ceiling = policy.initial
    while True:
        yield rng.uniform(ceiling / 2, ceiling)
        ceiling = min(policy.maximum, ceiling * policy.factor)

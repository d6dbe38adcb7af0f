"""Registry fixtures: the broker and proxy of the agent tests, and a recording publisher."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from devices.registry import PublishError
from tests.devices.agent.conftest import broker, proxy

__all__ = ["RecordingPublisher", "broker", "proxy"]


@dataclass
class RecordingPublisher:
    """A publisher that records messages, or refuses them while ``down``."""

    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    down: bool = False

    async def publish(self, topic: str, payload: bytes, retain: bool) -> None:  # noqa: FBT001
        """Record, or raise PublishError while down."""
        if self.down:
            raise PublishError("not connected")
        self.messages.append((topic, payload, retain))


@pytest.fixture
def publisher() -> RecordingPublisher:
    """A recording publisher, up."""
    return RecordingPublisher()

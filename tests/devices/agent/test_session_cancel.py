"""A cancellation that ``asyncio.wait_for`` drops (Python 3.11) still ends the task.

aiomqtt waits for each acknowledgement with ``asyncio.wait_for``; when the
acknowledgement and the cancellation arrive in the same turn of the loop, 3.11
returns the acknowledgement and drops the cancellation. A device agent cancelled
that way waited forever. These tests make that turn happen on purpose.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from devices.agent.session import MqttSession
from devices.agent.settings import BrokerSettings
from tests.fakes import FakeClock


class _AckWithTheCancel:
    """Stands in for a connected aiomqtt client; the test acknowledges by hand."""

    def __init__(self) -> None:
        self.ack: asyncio.Future[None] | None = None
        self.asked = asyncio.Event()

    async def _wait_for_ack(self, *_args: Any, **_kwargs: Any) -> None:  # noqa: ANN401
        self.ack = asyncio.get_running_loop().create_future()
        self.asked.set()
        await asyncio.wait_for(self.ack, 10)

    publish = subscribe = _wait_for_ack


async def _acknowledge_and_cancel(client: _AckWithTheCancel, task: asyncio.Task[None]) -> None:
    await client.asked.wait()
    await asyncio.sleep(0)  # wait_for is waiting now
    assert client.ack is not None
    client.ack.set_result(None)  # the PUBACK ...
    task.cancel()  # ... and the cancellation, in one turn of the loop


@pytest.mark.parametrize("call", ["publish", "subscribe"])
async def test_a_dropped_cancellation_is_raised(call: str) -> None:
    """``publish`` and ``subscribe`` end cancelled, not acknowledged."""
    session = MqttSession(BrokerSettings(), identifier="t", clock=FakeClock(), rng=random.Random(1))
    client = _AckWithTheCancel()
    session._client = client  # type: ignore[assignment]  # connected, for the test
    if call == "publish":
        task = asyncio.create_task(session.publish("t/1", b"x"))
    else:
        task = asyncio.create_task(session.subscribe("t/#"))
    await _acknowledge_and_cancel(client, task)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()

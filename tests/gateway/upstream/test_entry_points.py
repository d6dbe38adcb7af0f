"""The simulators' command-line entry functions serve until cancelled."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from devices.clock import SystemClock
from gateway.upstream import (
    CardRef,
    CircuitBreaker,
    EnvelopeChannel,
    UpstreamRejectedError,
    json_platform_client,
)
from security.envelope import DictEnvelopeKeys, EnvelopeOpener, EnvelopeSealer
from simulators.bank import BankSimulator, run_bank_simulator
from simulators.platform import PlatformSimulator, platform_name, run_platform_simulator
from tests.conftest import free_port

if TYPE_CHECKING:
    from security.envelope import SenderIdentity
    from tests.gateway.upstream.conftest import Pki

pytestmark = pytest.mark.integration


async def test_run_platform_and_bank_simulators(pki: Pki, identity: SenderIdentity) -> None:
    """Both entry functions start, answer over mutual TLS and stop on cancellation."""
    trusted = DictEnvelopeKeys()
    trusted.add(identity)
    cert, key, ca = (
        pki.directory / name for name in ("upstream-sim.pem", "upstream-sim.key", "ca.pem")
    )
    started: list[PlatformSimulator | BankSimulator] = []
    platform_task = asyncio.create_task(
        run_platform_simulator(
            cert=cert, key=key, ca=ca, trusted=trusted, port=free_port(), on_started=started.append
        ),
        name="platform-simulator",
    )
    bank_task = asyncio.create_task(
        run_bank_simulator(
            cert=cert, key=key, ca=ca, trusted=trusted, port=free_port(), on_started=started.append
        ),
        name="bank-simulator",
    )
    async with asyncio.timeout(20):
        while len(started) < 2:  # noqa: ASYNC110 - waits on the servers' start-up I/O
            await asyncio.sleep(0.01)
    platform = next(s for s in started if isinstance(s, PlatformSimulator))
    keys = DictEnvelopeKeys()
    platform.trust_platforms(keys)
    clock = SystemClock()  # the entry function runs on the real clock
    channel = EnvelopeChannel(
        target="platform",
        url=platform.url("500000", "json"),
        receiver=platform_name("500000"),
        sealer=EnvelopeSealer(identity),
        opener=EnvelopeOpener(identity.sender, keys),
        ssl_context=pki.client(),
        clock=clock,
        breaker=CircuitBreaker("platform", clock),
    )
    try:
        with pytest.raises(UpstreamRejectedError):
            await json_platform_client(channel).query_status(CardRef("C00000001"))
    finally:
        await channel.close()
    assert platform.counters.received == 1
    for task in (platform_task, bank_task):
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

"""``branchd sim platform`` / ``branchd sim bank`` as processes, reached over mutual TLS.

Each simulator runs as ``python -m simulators.<name>.cli``; the branch trusts
it through the shared peer-keys file and publishes its own key there, which
the running simulator picks up.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devices.clock import SystemClock
from gateway.upstream import (
    CardRef,
    CircuitBreaker,
    EnvelopeChannel,
    JsonBankClient,
    PeerKeysFile,
    UpstreamRejectedError,
    json_platform_client,
    publish_identity,
)
from protocols.platform import Status
from security.envelope import EnvelopeOpener, EnvelopeSealer
from simulators.bank import BANK_NAME
from simulators.platform import cli as platform_cli
from simulators.platform import platform_name

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from security.envelope import SenderIdentity
    from tests.gateway.upstream.conftest import Pki

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT = 30.0


class Running:
    """A simulator process and the URLs it printed."""

    def __init__(self, process: asyncio.subprocess.Process, lines: list[str]) -> None:
        """Keep the process and its first lines."""
        self.process = process
        self.lines = lines

    def url(self, label: str) -> str:
        """The URL printed after ``label``."""
        return next(line.split(": ", 1)[1] for line in self.lines if line.strip().startswith(label))


async def _start(module: str, pki: Pki, keys: Path, tmp: Path, until: str) -> Running:
    """Start ``python -m <module>`` with a new identity; read stdout up to ``until``."""
    d = pki.directory
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *("--cert", str(d / "upstream-sim.pem"), "--key", str(d / "upstream-sim.key")),
        *("--ca", str(d / "ca.pem"), "--port", "0", "--peer-keys", str(keys)),
        *("--identity", str(tmp / f"{module}.identity.json"), "--new-identity"),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(STARTUP_TIMEOUT):
        while not any(line.startswith(until) for line in lines):
            raw = await process.stdout.readline()
            if not raw:
                pytest.fail(f"{module} ended before it listened: {lines}")
            lines.append(raw.decode().rstrip())
        if until.startswith("platform"):
            more = [await process.stdout.readline() for _ in range(6)]  # province x dialect
            lines.extend(raw.decode().rstrip() for raw in more)
    return Running(process, lines)


async def _stop(running: Running) -> int:
    """SIGTERM, then the exit status."""
    running.process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(STARTUP_TIMEOUT):
        await running.process.communicate()
    assert running.process.returncode is not None
    return running.process.returncode


@pytest.fixture
async def channels() -> AsyncIterator[list[EnvelopeChannel]]:
    """Channels made by a test, closed at the end."""
    made: list[EnvelopeChannel] = []
    yield made
    for channel in made:
        await channel.close()


def _channel(  # noqa: PLR0913 - test knobs
    pki: Pki, identity: SenderIdentity, keys: Path, *, target: str, url: str, receiver: str
) -> EnvelopeChannel:
    """A channel on the real clock trusting the peer-keys file."""
    clock = SystemClock()  # the simulator process runs on the real clock
    return EnvelopeChannel(
        target=target,
        url=url,
        receiver=receiver,
        sealer=EnvelopeSealer(identity),
        opener=EnvelopeOpener(identity.sender, PeerKeysFile(keys, required=True)),
        ssl_context=pki.client(),
        clock=clock,
        breaker=CircuitBreaker(target, clock),
    )


async def test_platform_simulator_process(
    pki: Pki, identity: SenderIdentity, tmp_path: Path, channels: list[EnvelopeChannel]
) -> None:
    """The platform process publishes its keys, trusts the branch's, answers, stops on SIGTERM."""
    keys = tmp_path / "peer-keys.json"
    running = await _start("simulators.platform.cli", pki, keys, tmp_path, "platform simulator")
    try:
        publish_identity(keys, identity)  # after the simulator started: it re-reads the file
        url = running.url("650000 json")
        assert url.endswith("/platform/650000/json")
        channel = _channel(
            pki, identity, keys, target="platform", url=url, receiver=platform_name("650000")
        )
        channels.append(channel)
        with pytest.raises(UpstreamRejectedError) as info:
            await json_platform_client(channel).query_status(CardRef("X00000001"))
        assert info.value.status == Status.NOT_FOUND
    finally:
        status = await _stop(running)
    assert status == 0


async def test_bank_simulator_process(
    pki: Pki, identity: SenderIdentity, tmp_path: Path, channels: list[EnvelopeChannel]
) -> None:
    """The bank process answers a bound account over mutual TLS and stops on SIGTERM."""
    keys = tmp_path / "peer-keys.json"
    publish_identity(keys, identity)  # before the simulator started
    running = await _start("simulators.bank.cli", pki, keys, tmp_path, "bank simulator")
    try:
        channel = _channel(
            pki,
            identity,
            keys,
            target="bank",
            url=running.url("bank simulator"),
            receiver=BANK_NAME,
        )
        channels.append(channel)
        account = await JsonBankClient(channel).open_account("X00000001", "650102199001011234")
        assert account
    finally:
        status = await _stop(running)
    assert status == 0


def test_missing_identity_is_a_usage_error(pki: Pki, tmp_path: Path) -> None:
    """Without --new-identity a missing identity file makes run() return 2 at once."""
    parser = argparse.ArgumentParser()
    platform_cli.add_arguments(parser)
    d = pki.directory
    args = parser.parse_args(
        [
            *("--cert", str(d / "upstream-sim.pem"), "--key", str(d / "upstream-sim.key")),
            *("--ca", str(d / "ca.pem"), "--peer-keys", str(tmp_path / "keys.json")),
            *("--identity", str(tmp_path / "missing.json")),
        ]
    )
    assert platform_cli.run(args) == 2
    assert not (tmp_path / "keys.json").exists()

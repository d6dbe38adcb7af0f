"""The simulated PIN pad: its answers to odd requests, and ``branchd sim pinpad``."""

from __future__ import annotations

import asyncio
import os
import random
import select
import signal
import subprocess
import sys
import termios
import tty
from typing import TYPE_CHECKING

import pytest

from devices.pinpad import PinPadDriver, Prompt
from protocols.pinpad.decoder import NEED_DATA, Discarded, PadMessageDecoder
from protocols.pinpad.frames import Command, KeyAlgorithm, Reply, Request, Status, encode_frame
from simulators.pinpad.cli import keys_of_line
from tests.devices.pinpad.conftest import ACCOUNT, TEST_TIMEOUTS, load_params
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from pathlib import Path

    from simulators.pinpad import PinPadSimulator

pytestmark = pytest.mark.integration


def raw_exchange(path: str, data: bytes, replies: int = 1) -> list[object]:
    """Write raw bytes to the pad's pty and decode ``replies`` messages back."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        termios.tcflush(fd, termios.TCIOFLUSH)
        os.write(fd, data)
        decoder = PadMessageDecoder()
        messages: list[object] = []
        while len(messages) < replies:
            ready, _, _ = select.select([fd], [], [], 10)
            assert ready, "the simulated pad did not answer"
            decoder.receive_data(os.read(fd, 4096))
            while (event := decoder.next_event()) is not NEED_DATA:
                messages.append(event)
        return messages
    finally:
        os.close(fd)


async def test_unknown_command_and_bad_parameters(pad: PinPadSimulator) -> None:
    """An unknown command code and bad SHOW/LOAD_KEY data are answered, not ignored."""
    frames = (
        encode_frame(b"\x05\x77")
        + Request(6, Command.SHOW, b"\x66").to_bytes()
        + Request(7, Command.LOAD_KEY, b"\x01").to_bytes()
        + Request(8, Command.READ_PIN, b"\x01").to_bytes()
    )
    replies = await asyncio.to_thread(raw_exchange, pad.path, frames, 4)
    assert [(r.seq, r.status) for r in replies if isinstance(r, Reply)] == [
        (6, Status.BAD_PARAMETER),
        (7, Status.BAD_PARAMETER),
        (8, Status.BAD_PARAMETER),
    ]
    # UNKNOWN_COMMAND echoes a command byte the host does not know: it frames, but is
    # no reply this host can match, so its decoder reports it as a bad message.
    assert isinstance(replies[0], Discarded)
    assert replies[0].reason == "bad_message"


async def test_busy_during_an_entry(pad: PinPadSimulator) -> None:
    """While an entry runs only ABORT is served; ABORT answers the entry first."""
    pad.keys.load(load_params())
    entry = Request(
        1, Command.READ_PIN, bytes((Prompt.ENTER, 0, 6, 6, 30)) + ACCOUNT.encode()
    ).to_bytes()
    frames = entry + Request(2, Command.INFO).to_bytes() + Request(3, Command.ABORT).to_bytes()
    replies = await asyncio.to_thread(raw_exchange, pad.path, frames, 3)
    assert replies == [
        Reply(2, Command.INFO, Status.BUSY),
        Reply(1, Command.READ_PIN, Status.ABORTED),
        Reply(3, Command.ABORT, Status.OK),
    ]


@pytest.mark.parametrize(
    ("line", "keys"), [("123456\n", "123456E"), ("c\n", "C"), ("12x34e", "12X34E")]
)
def test_keys_of_a_typed_line(line: str, keys: str) -> None:
    """Digits alone are typed and entered; letters are the pad's keys."""
    assert keys_of_line(line) == keys


async def test_command_line_serves_until_sigterm(pty_available: None, tmp_path: Path) -> None:
    """``branchd sim pinpad --auto-pin`` prints its pty, loads a key, answers PINs, exits 0."""
    del pty_available
    link = tmp_path / "pinpad0"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators.pinpad.cli",
        "--link",
        str(link),
        "--auto-pin",
        "123456",
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        for _ in range(20):
            line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
            if line.endswith(f" -> {link}"):
                break
        else:
            pytest.fail("no pty announced")
        driver = PinPadDriver(
            str(link),
            clock=FakeClock(autojump=False),
            rng=random.Random(1),
            key_label="tpk",
            timeouts=TEST_TIMEOUTS,
        )
        try:
            await driver.open()
            assert driver.connected
            await driver.load_key(load_params(KeyAlgorithm.TDES_2KEY))
            block = await driver.read_new_pin(account=ACCOUNT, timeout=30)
            assert len(block.block) == 8
        finally:
            await driver.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    assert not link.exists()

"""``branchd sim station`` as its own process: pty link, status file, faults, SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import TYPE_CHECKING, Any

import pytest

from devices.printer import PrinterJamError
from simulators.printer import Fault
from simulators.station.cli import add_arguments, config_from_args, parse_fault
from tests.devices.station.conftest import make_driver

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

#: Waiting on a real process, with a deadline.
PROCESS_DEADLINE = 20.0


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_options_make_the_configuration(tmp_path: Path) -> None:
    """Every option lands in the station configuration."""
    args = _parse(
        "--link", str(tmp_path / "p"), "--blanks", "7", "--time-scale", "0.5",
        "--vpcd-port", "35964", "--status", str(tmp_path / "s.json"),
        "--fault", "jam:3", "--fault", "jam-print:2", "--fault", "faulty-chip:4",
        "--fault", "cover_open", "--first-serial", "500",
    )  # fmt: skip
    config = config_from_args(args)
    assert config.blanks == 7
    assert config.time_scale == 0.5
    assert config.vpcd_port == 35964
    assert config.jam_on_feed == frozenset({3})
    assert config.jam_after_contact == frozenset({2})
    assert config.faulty_chips == frozenset({4})
    assert config.printer_faults == frozenset({Fault.COVER_OPEN})
    assert config.first_serial == 500
    assert config_from_args(_parse("--no-vpcd")).vpcd_port is None


@pytest.mark.parametrize("text", ["jam", "jam:0", "jam:x", "smoke", "cover_open:2"])
def test_bad_faults_are_refused_with_a_clear_message(text: str) -> None:
    """A fault that is not one gets an argparse error naming what is wrong."""
    with pytest.raises(argparse.ArgumentTypeError, match=r"fault|needs"):
        parse_fault(text)


async def _announced(process: asyncio.subprocess.Process, link: Path) -> None:
    assert process.stdout is not None
    async with asyncio.timeout(PROCESS_DEADLINE):
        while True:
            line = (await process.stdout.readline()).decode()
            assert line, "the station exited before announcing its pty"
            if line.strip().endswith(f" -> {link}"):
                return


def _status(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


async def test_the_station_process_serves_its_pty_and_writes_its_status(
    pty_available: None, tmp_path: Path
) -> None:
    """The process announces its link, moves cards with their chips, exits 0 on SIGTERM."""
    del pty_available
    link, status = tmp_path / "printer", tmp_path / "status.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.station.cli", "--link", str(link),
        "--blanks", "3", "--time-scale", "0", "--no-vpcd", "--status", str(status),
        "--fault", "jam:2",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await _announced(process, link)
        assert _status(status)["feeder"] == 3
        driver = make_driver(str(link))
        try:
            await driver.connect()
            await driver.insert_card()
            state = _status(status)
            assert state["chip_in_reader"] is True
            assert state["card"]["card_id_code"] == "330100D1560000050000000000000001"
            await driver.eject_card()
            with pytest.raises(PrinterJamError):
                await driver.insert_card()
            assert _status(status)["printer_error"] == "mechanical"
            await driver.clear_error()
            await driver.reject_card()
        finally:
            await driver.close()
        state = _status(status)
        assert [c["serial"] for c in state["output_tray"]] == [1]
        assert [c["serial"] for c in state["reject_box"]] == [2]
        assert state["feeder"] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(PROCESS_DEADLINE):
            assert await process.wait() == 0
    assert not link.exists()
    assert _status(status)["device"] is None

"""``kill -9`` of the daemon during a 50-card run: nothing lost, nothing made twice.

The world outlives the daemon, as hardware and the province do: this process
runs the platform and bank simulators (mutual TLS) and the issuance station,
whose printer is a pty and whose chips go through pcscd's vpcd reader. The
daemon is ``branchd run`` in a process of its own, killed with SIGKILL at
random moments ten times while it works, and started again each time. The
teller system keeps asking for each application's card (the API answers the
same job), as a real one would after a dropped connection.

At the end: every application has its card, no two good cards carry the same
card number or holder, the blank-card stock reconciles with the feeder's
count, and the platform accepted each card's return data (回盘) exactly once.

``BRANCHD_CRASH_SEED``, ``BRANCHD_CRASH_KILLS`` and ``BRANCHD_CRASH_CARDS``
change the moments, the number of kills and of cards (``bench/crash.py`` runs
it many times over).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from gateway.demo.world import DEMO_PROVINCE, FEEDER, DemoWorld
from tests.conftest import free_port
from tests.devices.card.conftest import pcscd
from tests.gateway.issuance.world import Teller

if TYPE_CHECKING:
    from pathlib import Path

    from tests.devices.card.conftest import Pcscd

pytestmark = [pytest.mark.integration, pytest.mark.pcsc]

__all__ = ["pcscd"]

CARDS = int(os.environ.get("BRANCHD_CRASH_CARDS", "50"))
KILLS = int(os.environ.get("BRANCHD_CRASH_KILLS", "10"))
STALL_SECONDS = 45.0  # no card made for this long: the operator power-cycles the printer
VPCD_PORT = 35964  # the second vpcd reader ("Virtual PCD 00 01")


class DaemonProcess:
    """``branchd run`` as a process that can be killed and started again."""

    def __init__(self, world: DemoWorld, log: Path) -> None:
        """Run the world's configuration; log to ``log``."""
        self.world = world
        self.log = log
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self, http: aiohttp.ClientSession) -> None:
        """Start and wait until it answers /readyz."""
        assert self.world.config_path is not None
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "run", "--migrate",
                "--config", str(self.world.config_path),
                stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        self.starts += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while loop.time() < deadline:
            assert self.process.returncode is None, self.log.read_text()[-3000:]
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(self.world.base_url + "/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
        raise AssertionError("the daemon did not get ready:\n" + self.log.read_text()[-3000:])

    async def kill(self) -> None:
        """SIGKILL, and reap it."""
        assert self.process is not None
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM (a clean stop), or SIGKILL when it does not stop."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            await self.kill()


async def ask(teller: Teller, receipt: str) -> dict[str, Any] | None:
    """Ask for the application's card; the job, or ``None`` if the daemon did not answer."""
    try:
        status, job = await teller.call("POST", "/v1/production/jobs", {"receipt_number": receipt})
    except aiohttp.ClientError:
        return None
    return dict(job) if status == 202 else None


@pytest.mark.timeout(3600)
async def test_kill_9_ten_times_during_a_50_card_run(tmp_path: Path, pcscd: Pcscd) -> None:
    """Zero lost applications, zero duplicate good cards, stock reconciles, each 回盘 once."""
    del pcscd  # running: the station serves its chips to the vpcd reader
    rng = random.Random(os.environ.get("BRANCHD_CRASH_SEED", "20261123"))
    world = DemoWorld(
        tmp_path / "world",
        port=free_port(),
        time_scale=0.005,
        blanks=CARDS + 30,
        quality_check="automatic",
        vpcd_port=VPCD_PORT,
        start_daemon=False,
        log_level="info",
    )
    async with world, aiohttp.ClientSession() as http:
        daemon = DaemonProcess(world, tmp_path / "daemon.log")
        teller = Teller(world, http)
        await daemon.start(http)
        try:
            await teller.load(CARDS + 30)
            receipts = [await teller.apply(100 + n, "测试") for n in range(CARDS)]
            for receipt in receipts[:10]:
                await ask(teller, receipt)
            for kill in range(KILLS):
                # Keep the teller system asking while the daemon works; kill it at a random moment.
                asking = asyncio.create_task(_keep_asking(teller, receipts, rng))
                await asyncio.sleep(rng.uniform(0.2, 2.5))
                await daemon.kill()
                asking.cancel()
                await asyncio.gather(asking, return_exceptions=True)
                await daemon.start(http)
                assert daemon.starts == kill + 2
            jobs = await _until_all_issued(teller, receipts)
        finally:
            await daemon.stop()
        station, platform = world.station, world.platform
        assert station is not None
        assert platform is not None
        snapshot = station.snapshot()

    numbers = [j["card_number"] for j in jobs.values()]
    assert len(set(numbers)) == CARDS  # every application has its own card
    good = [c for c in snapshot["output_tray"] if c["card_number"]]
    assert sorted(c["card_number"] for c in good) == sorted(numbers)  # no card twice
    assert len({c["ssn"] for c in good}) == CARDS
    province = platform.provinces[DEMO_PROVINCE]
    for card in good:
        on_platform = province.cards[card["card_number"]]
        assert on_platform.aaz501 == card["card_id_code"]
        assert on_platform.aaz502 == "1"
        assert province.returns[card["card_number"]] == 1  # 回盘 exactly once
    assert sum(province.returns.values()) == CARDS
    assert len(snapshot["reject_box"]) + len(good) == snapshot["fed"]


async def _keep_asking(teller: Teller, receipts: list[str], rng: random.Random) -> None:
    """The teller system asks for a few more cards now and then (and again after errors)."""
    pending = list(receipts)
    rng.shuffle(pending)
    for receipt in pending:
        await ask(teller, receipt)
        await asyncio.sleep(rng.uniform(0.0, 0.1))


async def _resume_paused(teller: Teller) -> None:
    """Resume every paused station, as the operator does after looking at the printer."""
    try:
        status, queue = await teller.call("GET", "/v1/production/queue", role="ops")
    except aiohttp.ClientError:
        return
    if status != 200:
        return
    for station in queue["stations"]:
        if station["paused"]:
            with contextlib.suppress(aiohttp.ClientError):
                await teller.call(
                    "POST", f"/v1/production/stations/{station['name']}/resume", role="ops"
                )


async def _until_all_issued(teller: Teller, receipts: list[str]) -> dict[str, dict[str, Any]]:
    """Ask for every card until all are issued; the jobs by receipt."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 600
    jobs: dict[str, dict[str, Any]] = {}
    progress, since = 0, loop.time()
    while len(jobs) < len(receipts):
        assert loop.time() < deadline, f"{len(jobs)} of {len(receipts)} issued"
        await _resume_paused(teller)  # an operator clears what a kill left in the printer
        if len(jobs) != progress:
            progress, since = len(jobs), loop.time()
        elif loop.time() - since > STALL_SECONDS:
            # Nothing made for a long while: the operator power-cycles the printer (the
            # daemon must take a printer that comes back on another link in its stride).
            station = teller.world.station
            assert station is not None
            await station.printer.restore_link()
            since = loop.time()
        for receipt in receipts:
            if receipt in jobs:
                continue
            job = await ask(teller, receipt)
            assert job is None or job["status"] != "failed", job
            if job is not None and job["status"] == "issued":
                jobs[receipt] = job
        await asyncio.sleep(0.2)
    station = teller.world.station
    assert station is not None
    status, result = await teller.call(
        "POST", "/v1/stock/reconciliations", {"counted": {FEEDER: station.snapshot()["feeder"]}}
    )
    assert status == 200, result
    assert result["ok"], result["problems"]
    for receipt in receipts:
        await teller.until_settled(receipt)
    return jobs

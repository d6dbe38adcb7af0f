"""Audit anchors over a real Mosquitto to a real monitor: journal first, re-sent until acknowledged.

Clocks are fakes that move only when the test advances them (reconnect waits,
retry backoff); nothing waits on a real timer. The branch and the monitor have
a clock each, so the test decides who reconnects first after an outage.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp import web

from devices.registry.publisher import MqttPublisher
from gateway.assembly import open_keystore
from gateway.audit.anchors import AnchorService, checkpoint_message
from gateway.audit.log import AuditLog
from gateway.config import load_config
from gateway.monitor.http import create_monitor_app
from gateway.monitor.service import Monitor, topic_filters
from gateway.monitor.settings import MonitorSettings
from gateway.runtime.db import create_engine, session_factory
from gateway.runtime.keys import KeyStoreSigner
from gateway.runtime.migrate import upgrade
from protocols.mqtt.anchors import audit_checkpoint_filter, audit_checkpoint_topic
from protocols.mqtt.topics import BranchTopics
from security.suites import GM
from tests.conftest import free_port
from tests.devices.agent.conftest import broker
from tests.fakes import FakeClock
from tests.gateway.builders import config_toml, master_key_file

if TYPE_CHECKING:
    from pathlib import Path

    from tests.devices.agent.conftest import Mosquitto

__all__ = ["broker"]

pytestmark = pytest.mark.integration

BRANCH = "T-652300-01"
PROVINCE = "650000"
WALL = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def until(predicate: object, *, clock: FakeClock | None = None, step: float = 1.0) -> None:
    """Wait (10 s at most) for ``predicate()`` to hold, advancing ``clock`` between looks."""
    assert callable(predicate)
    async with asyncio.timeout(10):
        while not await predicate():
            if clock is not None:
                await clock.advance(step)
            await asyncio.sleep(0.02)  # let the network deliver


def signer_for(tmp_path: Path, database_url: str) -> tuple[KeyStoreSigner, bytes]:
    """The branch key store's signing key and its public key."""
    path = tmp_path / "branchd.toml"
    path.write_text(
        config_toml(database_url, tmp_path, free_port(), master_key_file(tmp_path)), "utf-8"
    )
    store = open_keystore(load_config(path), create=True)
    assert store is not None
    return KeyStoreSigner(store, "branch-signing", create=True), store.public_key("branch-signing")


async def test_anchors_reach_the_monitor_after_restart_and_outage(  # noqa: PLR0915 - one story
    broker: Mosquitto, database_url: str, tmp_path: Path
) -> None:
    """Pending anchors survive a restart and a broker outage and are all kept by the monitor."""
    signer, public = signer_for(tmp_path, database_url)
    (tmp_path / "branch.der").write_bytes(public)
    branch_clock, monitor_clock = FakeClock(autojump=False), FakeClock(autojump=False)
    monitor_engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
    settings = MonitorSettings(
        province=PROVINCE,
        data_dir=tmp_path,
        broker=broker.settings(),
        audit_keys={BRANCH: tmp_path / "branch.der"},
    )
    assert audit_checkpoint_filter(PROVINCE) in topic_filters(settings)
    monitor = Monitor(settings, engine=monitor_engine, clock=monitor_clock, rng=random.Random(1))
    await monitor.start()
    engine = create_engine(database_url)
    tasks: list[asyncio.Task[None]] = []
    try:
        await upgrade(engine)
        tasks.append(asyncio.create_task(monitor.session.run(), name="monitor"))
        await asyncio.wait_for(monitor.session.connected.wait(), 10)
        log = AuditLog(session_factory(engine), GM, branch_clock)

        async def kept() -> int:
            return len(await monitor.store.checkpoints(BRANCH))

        # 1. The daemon signs three hours with no broker session: all three wait in the database.
        offline = AnchorService(
            log, signer, branch=BRANCH, period=3600, clock=branch_clock, rng=random.Random(1)
        )
        for hour in range(3):
            await log.append("teller-01", "card.status", f"card:{hour}")
            await branch_clock.advance(3600)
            assert len(await offline.checkpoint()) == 1
        assert len(await log.pending_anchors()) == 3

        # 2. "Restarted" with a publisher: the pending anchors go out, oldest first.
        publisher = MqttPublisher(
            broker.settings(),
            presence_topic=BranchTopics(PROVINCE, BRANCH).daemon_state(),
            identifier="branchd-telemetry",
            clock=branch_clock,
            rng=random.Random(2),
        )
        service = AnchorService(
            log, signer, branch=BRANCH, period=3600, clock=branch_clock, rng=random.Random(3),
            publisher=publisher, province=PROVINCE,
        )  # fmt: skip
        tasks.append(asyncio.create_task(publisher.run(), name="publisher"))
        tasks.append(asyncio.create_task(service.run_sender(), name="sender"))
        await until(lambda: _at_least(kept, 3), clock=branch_clock)
        assert await log.pending_anchors() == []

        # 3. The broker goes away: the next anchor waits, and is sent once it is back.
        await broker.stop()
        await log.append("teller-01", "card.status", "card:3")
        await branch_clock.advance(3600)
        assert len(await service.checkpoint()) == 1
        await until(lambda: _not(publisher.session.connected.is_set))
        await branch_clock.advance(1)  # the sender tries, is refused, backs off
        assert len(await log.pending_anchors()) == 1
        await broker.start()
        await until(lambda: _is(monitor.session.connected.is_set), clock=monitor_clock)
        await until(lambda: _at_least(kept, 4), clock=branch_clock)
        assert await log.pending_anchors() == []

        stored = await monitor.store.checkpoints(BRANCH)
        anchors = await log.anchors()
        assert [(c["end"], c["last_seq"], c["last_hash"]) for c in stored] == [
            (a.end, a.last_seq, a.last_hash.hex()) for a in anchors
        ]
        assert all(c["verified"] for c in stored)
        # A redelivery (QoS 1 may deliver twice) is kept once.
        payload = checkpoint_message(anchors[0]).to_bytes()
        assert await monitor.take_checkpoint(audit_checkpoint_topic(PROVINCE, BRANCH), payload)
        assert await kept() == 4
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.dispose()
        await monitor_engine.dispose()


async def _at_least(count: object, wanted: int) -> bool:
    assert callable(count)
    return bool(await count() >= wanted)


async def _is(check: object) -> bool:
    assert callable(check)
    return bool(check())


async def _not(check: object) -> bool:
    return not await _is(check)


async def test_monitor_verifies_and_serves_every_checkpoint(
    database_url: str, tmp_path: Path
) -> None:
    """Forged, unkeyed and valid checkpoints are all kept with their verdict and served."""
    signer, public = signer_for(tmp_path, database_url)
    (tmp_path / "branch.pem").write_bytes(public)
    clock = FakeClock(wall=WALL)
    monitor_engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
    settings = MonitorSettings(
        province=PROVINCE, data_dir=tmp_path, audit_keys={BRANCH: tmp_path / "branch.pem"}
    )
    monitor = Monitor(settings, engine=monitor_engine, clock=clock, rng=random.Random(1))
    await monitor.start()
    engine = create_engine(database_url)
    runner = web.AppRunner(create_monitor_app(monitor))
    try:
        await upgrade(engine)
        log = AuditLog(session_factory(engine), GM, clock)
        await log.append("teller-01", "card.status", "card:1")
        await clock.sleep(7200)
        assert len(await log.checkpoint_periods(signer, BRANCH, 3600)) == 2
        first, second = await log.anchors()
        topic = audit_checkpoint_topic(PROVINCE, BRANCH)
        assert await monitor.take_checkpoint(topic, checkpoint_message(first).to_bytes())
        bad = checkpoint_message(second).to_bytes().replace(b'"last_seq":1', b'"last_seq":7')
        assert await monitor.take_checkpoint(topic, bad) is False
        assert await monitor.take_checkpoint(topic, checkpoint_message(second).to_bytes())
        other = audit_checkpoint_topic(PROVINCE, "T-000000-09")  # no key configured
        assert await monitor.take_checkpoint(other, checkpoint_message(first).to_bytes()) is False
        assert await monitor.take_checkpoint(topic, b"{not json") is None
        assert await monitor.take_checkpoint(audit_checkpoint_topic("110000", BRANCH), bad) is None

        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}/api/branches"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/{BRANCH}/audit-checkpoints") as response:
                assert response.status == 200
                body = await response.json()
            verdicts = [(c["end"], c["last_seq"], c["verified"]) for c in body["checkpoints"]]
            assert verdicts == [
                (first.end, 1, True),
                (second.end, 7, False),
                (second.end, 1, True),
            ]
            async with http.get(f"{base}/T-000000-09/audit-checkpoints") as response:
                assert [c["verified"] for c in (await response.json())["checkpoints"]] == [False]
            async with http.get(f"{base}/nobody/audit-checkpoints") as response:
                assert (response.status, (await response.json())["checkpoints"]) == (200, [])
            for bad_id in ("a%20b", "x" * 65, "%00", "%F0%9F%98%80", "a%2Fb"):
                async with http.get(f"{base}/{bad_id}/audit-checkpoints") as response:
                    assert response.status in {400, 404}, bad_id
                    assert response.content_type == "application/problem+json"
                    if response.status == 400:
                        assert (await response.json())["parameter"] == "branch"
    finally:
        await runner.cleanup()
        await engine.dispose()
        await monitor_engine.dispose()

"""The monitor's state, alert rules, store and HTTP side, on a fake clock and real databases."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from gateway.monitor.http import create_monitor_app
from gateway.monitor.service import Monitor
from gateway.monitor.settings import MonitorSettings
from gateway.runtime.db import create_engine
from protocols.mqtt import (
    ApplicationsReport,
    BranchTopics,
    OutboxReport,
    ProductionReport,
    StockReport,
)
from protocols.mqtt.reports import CertificateEntry, CertificatesReport, HourCount
from protocols.mqtt.state import (
    DeviceKind,
    DeviceState,
    DeviceStatus,
    FeederLevel,
    Levels,
    Presence,
    PresenceState,
)
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from aiohttp import web
    from aiohttp.test_utils import TestClient

    Client = TestClient[web.Request, web.Application]

TOPICS = BranchTopics("650000", "T-652300-01")
OTHER = BranchTopics("650000", "T-652300-02")
SETTINGS = MonitorSettings.model_validate(
    {
        "province": "650000",
        "alerts": {"daemon_offline_after": 30, "device_offline_after": 300, "ribbon_low": 20},
    }
)


def iso(clock: FakeClock) -> str:
    """The fake clock's time as the daemon writes it."""
    return clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def printer(
    clock: FakeClock,
    status: DeviceStatus = DeviceStatus.ONLINE,
    levels: Levels | None = None,
    errors: int = 0,
) -> bytes:
    """A printer state payload."""
    return DeviceState(
        "printer-1",
        DeviceKind.PRINTER,
        status,
        "printer.connection" if status is DeviceStatus.OFFLINE else None,
        iso(clock),
        levels or Levels(FeederLevel.LOADED, "YMCKO", 200, reject_box_full=False, cover_open=False),
        {"errors": errors},
    ).to_bytes()


@pytest.fixture
async def make_monitor(
    database_url: str,
) -> AsyncIterator[Callable[[FakeClock], Monitor]]:
    """Monitors on one database (like several monitor processes of a shared group)."""
    engine = create_engine(database_url)
    made: list[Monitor] = []

    def make(clock: FakeClock) -> Monitor:
        monitor = Monitor(SETTINGS, engine=engine, clock=clock, rng=random.Random(1))
        made.append(monitor)
        return monitor

    try:
        yield make
    finally:
        await engine.dispose()


async def test_device_offline_alert_waits_is_deduplicated_and_clears(
    make_monitor: Callable[[FakeClock], Monitor],
) -> None:
    """Offline for 5 minutes raises one alert; repeats add none; back online clears it."""
    clock = FakeClock(autojump=False)
    monitor = make_monitor(clock)
    await monitor.start()
    monitor.ingest(TOPICS.daemon_state(), PresenceState(Presence.ONLINE, at=iso(clock)).to_bytes())
    monitor.ingest(TOPICS.device_state("printer-1"), printer(clock, DeviceStatus.OFFLINE))
    await monitor.evaluate()
    assert monitor.alerts() == []
    await clock.advance(299)
    await monitor.evaluate()
    assert monitor.alerts() == []
    await clock.advance(1)
    await monitor.evaluate()
    [alert] = monitor.alerts()
    assert (alert["rule"], alert["device"], alert["detail"]) == (
        "device_offline",
        "printer-1",
        "printer.connection",
    )
    monitor.ingest(TOPICS.device_state("printer-1"), printer(clock, DeviceStatus.OFFLINE))
    await clock.advance(600)
    await monitor.evaluate()
    assert [a["id"] for a in monitor.alerts()] == [alert["id"]]
    monitor.ingest(TOPICS.device_state("printer-1"), printer(clock))
    await monitor.evaluate()
    assert monitor.alerts() == []
    [stored] = await monitor.store.recent_alerts()
    assert stored.id == alert["id"]
    assert stored.cleared_at == clock.now()


async def test_daemon_offline_after_threshold_suppresses_device_rule(
    make_monitor: Callable[[FakeClock], Monitor],
) -> None:
    """The Last Will raises daemon_offline after 30 s; stale device states raise nothing."""
    clock = FakeClock(autojump=False)
    monitor = make_monitor(clock)
    await monitor.start()
    monitor.ingest(TOPICS.device_state("printer-1"), printer(clock, DeviceStatus.OFFLINE))
    will = PresenceState(Presence.OFFLINE, "connection_lost").to_bytes()
    monitor.ingest(TOPICS.daemon_state(), will)
    await clock.advance(29)
    await monitor.evaluate()
    assert monitor.alerts() == []
    await clock.advance(3600)
    await monitor.evaluate()
    assert [a["rule"] for a in monitor.alerts()] == ["daemon_offline"]
    assert monitor.overview()["presence"] == {"online": 0, "offline": 1, "unknown": 0}
    monitor.ingest(TOPICS.daemon_state(), PresenceState(Presence.ONLINE, at=iso(clock)).to_bytes())
    monitor.ingest(TOPICS.device_state("printer-1"), printer(clock))
    await monitor.evaluate()
    assert monitor.alerts() == []


async def test_every_consumable_and_report_rule(
    make_monitor: Callable[[FakeClock], Monitor],
) -> None:
    """Feeder, ribbon, reject box, outbox, dead letters, overdue, stock, certificates."""
    clock = FakeClock(autojump=False)
    monitor = make_monitor(clock)
    await monitor.start()
    at = iso(clock)
    low = Levels(FeederLevel.NEAR_EMPTY, "YMCKO", 20, reject_box_full=True, cover_open=False)
    monitor.ingest(TOPICS.daemon_state(), PresenceState(Presence.ONLINE, at=at).to_bytes())
    monitor.ingest(TOPICS.device_state("printer-1"), printer(clock, levels=low))
    monitor.ingest(TOPICS.daemon_report("outbox"), OutboxReport(at, 100, 2).to_bytes())
    monitor.ingest(TOPICS.daemon_report("applications"), ApplicationsReport(at, 9, 1).to_bytes())
    monitor.ingest(
        TOPICS.daemon_report("stock"), StockReport(at, reconciled=False, problems=1).to_bytes()
    )
    certificate = CertificateEntry("CN=branchd", "2026-12-13", 20.0, expires_soon=True)
    monitor.ingest(
        TOPICS.daemon_report("certificates"), CertificatesReport(at, (certificate,)).to_bytes()
    )
    await monitor.evaluate()
    rules = sorted(a["rule"] for a in monitor.alerts())
    assert rules == [
        "certificate_expiring",
        "dead_letters",
        "feeder_low",
        "outbox_backlog",
        "overdue_applications",
        "reject_box_full",
        "ribbon_low",
        "stock_mismatch",
    ]
    view = monitor.branch(TOPICS.branch)
    assert view is not None
    assert view["reports"]["outbox"]["dead_letters"] == 2
    assert len(view["alerts"]) == 8


async def test_two_monitors_store_one_alert_and_share_acknowledgement(
    make_monitor: Callable[[FakeClock], Monitor],
) -> None:
    """Monitors of a shared group raising the same alert store it once; an ack syncs."""
    clock = FakeClock(autojump=False)
    first, second = make_monitor(clock), make_monitor(clock)
    await first.start()
    await second.start()
    will = PresenceState(Presence.OFFLINE, "connection_lost").to_bytes()
    for monitor in (first, second):
        monitor.ingest(TOPICS.daemon_state(), will)
    await clock.advance(60)
    await first.evaluate()
    await second.evaluate()
    [one], [two] = first.alerts(), second.alerts()
    assert one["id"] == two["id"]
    assert len(await first.store.recent_alerts()) == 1
    acked = await first.acknowledge(one["id"], "值班员 Li")
    assert acked is not None
    assert acked.acked_by == "值班员 Li"
    await second.sync()
    assert second.alerts()[0]["acked_by"] == "值班员 Li"


async def test_state_another_monitor_stored_is_merged_without_double_counting(
    make_monitor: Callable[[FakeClock], Monitor],
) -> None:
    """Sync takes the newest payload per topic from the shared table; no samples twice."""
    clock = FakeClock(autojump=False)
    first, second = make_monitor(clock), make_monitor(clock)
    await first.start()
    await second.start()
    first.ingest(TOPICS.device_state("printer-1"), printer(clock, errors=1))
    await clock.advance(1)
    first.ingest(TOPICS.device_state("printer-1"), printer(clock, DeviceStatus.ERROR, errors=4))
    first.ingest(OTHER.daemon_state(), PresenceState(Presence.ONLINE, at=iso(clock)).to_bytes())
    await first.flush()
    await second.sync()
    view = second.branch(TOPICS.branch)
    assert view is not None
    assert view["devices"][0]["state"] == "error"
    assert OTHER.branch in second.state.branches
    await second.flush()
    errors = await first.store.hourly("errors", clock.now() - timedelta(hours=1))
    assert [value for _hour, value in errors] == [3.0]


async def test_history_downsampling_keeps_hourly_answers(
    make_monitor: Callable[[FakeClock], Monitor],
) -> None:
    """Minute buckets folded into hours answer the same; cards per hour come from the report."""
    clock = FakeClock(autojump=False)
    monitor = make_monitor(clock)
    await monitor.start()
    monitor.ingest(TOPICS.device_state("printer-1"), printer(clock, errors=0))
    for minute in range(1, 4):
        await clock.advance(60)
        monitor.ingest(TOPICS.device_state("printer-1"), printer(clock, errors=minute * 2))
    hours = (HourCount("2026-11-23T08:00:00Z", 10, 1), HourCount("2026-11-23T09:00:00Z", 4, 0))
    monitor.ingest(
        TOPICS.daemon_report("production"), ProductionReport(iso(clock), hours).to_bytes()
    )
    await monitor.flush()
    since = clock.now() - timedelta(hours=3)
    before = await monitor.store.hourly("errors", since)
    assert [v for _h, v in before] == [6.0]
    folded = await monitor.store.downsample(clock.now() + timedelta(hours=49), 48, 90)
    assert folded >= 3
    assert await monitor.store.hourly("errors", since) == before
    cards = await monitor.store.hourly("cards_issued", since, TOPICS.branch)
    assert [v for _h, v in cards] == [10.0, 4.0]
    assert await monitor.store.downsample(clock.now() + timedelta(days=91), 48, 90) == 0
    assert await monitor.store.hourly("errors", since) == []


async def test_foreign_and_broken_messages_are_counted_not_applied(
    make_monitor: Callable[[FakeClock], Monitor],
) -> None:
    """Another province, another topic, a broken payload: rejected, nothing changes."""
    monitor = make_monitor(FakeClock())
    await monitor.start()
    monitor.ingest(BranchTopics("110000", "B").daemon_state(), b'{"v":1,"state":"online"}')
    monitor.ingest(TOPICS.daemon_state(), b"not json")
    monitor.ingest("elsewhere/x", b"{}")
    monitor.ingest(TOPICS.daemon_state(), b"")  # a cleared retained message: ignored
    assert monitor.state.branches == {}
    assert monitor.state.rejected == 3


# ------------------------------------------------------------------ HTTP


@pytest.fixture
async def served(
    make_monitor: Callable[[FakeClock], Monitor],
    aiohttp_client: object,
) -> tuple[Monitor, Client, FakeClock]:
    """A started monitor behind its application, on the test client."""
    clock = FakeClock(autojump=False)
    monitor = make_monitor(clock)
    await monitor.start()
    assert callable(aiohttp_client)
    client: Client = await aiohttp_client(create_monitor_app(monitor))
    return monitor, client, clock


async def test_api_overview_branch_alert_ack_and_problems(
    served: tuple[Monitor, Client, FakeClock],
) -> None:
    """The JSON API answers; bad input is problem+json; an ack is kept."""
    monitor, client, clock = served
    monitor.ingest(TOPICS.daemon_state(), PresenceState(Presence.OFFLINE, "stopped").to_bytes())
    await clock.advance(31)
    await monitor.evaluate()
    overview = await (await client.get("/api/overview")).json()
    assert overview["branches"][0]["presence"] == "offline"
    assert overview["branches"][0]["alerts"] == 1
    missing = await client.get("/api/branches/nope")
    assert missing.status == 404
    assert missing.content_type == "application/problem+json"
    assert (await missing.json())["code"] == "not-found"
    [alert] = (await (await client.get("/api/alerts")).json())["alerts"]
    bad = await client.post(f"/api/alerts/{alert['id']}/ack", json={"by": ""})
    assert bad.status == 400
    assert (await bad.json())["code"] == "bad-request"
    assert (await client.post("/api/alerts/99999/ack", json={"by": "x"})).status == 404
    ok = await client.post(f"/api/alerts/{alert['id']}/ack", json={"by": "ops"})
    assert (await ok.json())["acked_by"] == "ops"
    assert (await client.get("/api/history?series=secrets")).status == 400
    history = await (await client.get("/api/history?series=errors&hours=2")).json()
    assert history == {"series": "errors", "points": []}
    page = await client.get("/")
    assert "dashboard.js" in await page.text()
    assert (await client.get("/static/dashboard.js")).status == 200
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "ok"
    assert health["offline"] == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'branchd_monitor_alerts_active{rule="daemon_offline"} 1.0' in metrics
    assert 'branchd_monitor_messages_total{kind="daemon_state"} 1.0' in metrics


async def test_live_updates_over_server_sent_events(
    served: tuple[Monitor, Client, FakeClock],
) -> None:
    """A browser's event stream gets the changed branch's summary after a push."""
    monitor, client, clock = served
    response = await client.get("/api/events")
    assert response.headers["Content-Type"] == "text/event-stream"
    assert await response.content.readline() == b"retry: 2000\n"
    await response.content.readline()
    monitor.ingest(TOPICS.daemon_state(), PresenceState(Presence.ONLINE, at=iso(clock)).to_bytes())
    await monitor.push()
    assert await asyncio.wait_for(response.content.readline(), 5) == b"event: update\n"
    data = await asyncio.wait_for(response.content.readline(), 5)
    assert b'"branch":"T-652300-01"' in data
    assert b'"presence":"online"' in data
    monitor.end_streams()
    response.close()

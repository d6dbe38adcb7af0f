"""The monitor's JSON API refuses what it cannot take with a 4xx problem, and changes nothing."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import pytest

from gateway.monitor.http import create_monitor_app
from gateway.monitor.service import Monitor
from gateway.monitor.settings import MonitorSettings
from gateway.runtime.db import create_engine
from protocols.mqtt import BranchTopics
from protocols.mqtt.state import Presence, PresenceState
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from aiohttp import web
    from aiohttp.test_utils import TestClient

    Client = TestClient[web.Request, web.Application]

SETTINGS = MonitorSettings.model_validate(
    {"province": "650000", "alerts": {"daemon_offline_after": 30}}
)
TOPICS = BranchTopics("650000", "T-652300-01")
PROBLEM = "application/problem+json"


@pytest.fixture
async def served(
    database_url: str, aiohttp_client: object
) -> AsyncIterator[tuple[Monitor, Client]]:
    """A started monitor with one active alert (the branch is offline), on the test client."""
    engine = create_engine(database_url)
    clock = FakeClock(autojump=False)
    monitor = Monitor(SETTINGS, engine=engine, clock=clock, rng=random.Random(1))
    await monitor.start()
    monitor.ingest(TOPICS.daemon_state(), PresenceState(Presence.OFFLINE, "stopped").to_bytes())
    await clock.advance(31)
    await monitor.evaluate()
    assert callable(aiohttp_client)
    client: Client = await aiohttp_client(create_monitor_app(monitor))
    try:
        yield monitor, client
    finally:
        await engine.dispose()


async def test_bad_acknowledgements_are_refused_and_change_nothing(
    served: tuple[Monitor, Client],
) -> None:
    """Alert ids and bodies the API cannot take: 400 or 404, the alert stays unacknowledged."""
    monitor, client = served
    [alert] = monitor.alerts()
    for alert_id, status in (
        ("x", 400),
        ("-1", 400),
        ("%D9%A1", 400),  # ARABIC-INDIC DIGIT ONE, which int() would take
        ("99999999999", 400),
        ("0", 404),
        ("2147483648", 404),  # beyond the INTEGER column
        ("2147483647", 404),
    ):
        answer = await client.post(f"/api/alerts/{alert_id}/ack", json={"by": "ops"})
        assert (answer.status, answer.content_type) == (status, PROBLEM), alert_id
        code = "bad-request" if status == 400 else "not-found"
        assert (await answer.json())["code"] == code
    for body in (b"[" * 100_000, b'{"by":' * 50_000 + b'"x"' + b"}" * 50_000):
        answer = await client.post(f"/api/alerts/{alert['id']}/ack", data=body)
        problem = await answer.json()
        assert (answer.status, problem["code"], problem["parameter"]) == (
            400,
            "bad-request",
            "body",
        )
    for body in (
        b"[" * 1000,  # nested beyond the parser's recursion
        b"\xff\xfe",
        b"",
        b"null",
        b'{"by": "\\u0000"}',
        b'{"by": "a\\u0000b"}',
        b'{"by": "\\ud800"}',
        b'{"by": "ops\\n"}',
        b'{"by": 1}',
        b'{"by": "' + b"x" * 65 + b'"}',
        b'{"by": "   "}',
    ):
        answer = await client.post(f"/api/alerts/{alert['id']}/ack", data=body)
        assert (answer.status, answer.content_type) == (400, PROBLEM), body[:40]
        problem = await answer.json()
        assert (problem["code"], problem["parameter"]) == ("bad-request", "by")
    assert monitor.alerts()[0]["acked_by"] is None
    [stored] = await monitor.store.active_alerts()
    assert stored.acked_by is None
    ok = await client.post(f"/api/alerts/{alert['id']}/ack", json={"by": "值班员"})
    assert (await ok.json())["acked_by"] == "值班员"


async def test_bad_history_parameters_are_400_naming_them(served: tuple[Monitor, Client]) -> None:
    """series, hours and branch are checked before the database is asked."""
    _, client = served
    for query, parameter in (
        ("series=secrets", "series"),
        ("hours=0", "hours"),
        ("hours=-1", "hours"),
        ("hours=99999999999999999999", "hours"),
        ("hours=%E2%91%A0", "hours"),
        ("hours=2161", "hours"),
        ("branch=%00", "branch"),
        ("branch=%ff", "branch"),
        ("branch=%ed%a0%80", "branch"),
        ("branch=a%20b", "branch"),
        ("branch=" + "x" * 65, "branch"),
    ):
        answer = await client.get(f"/api/history?{query}")
        assert (answer.status, answer.content_type) == (400, PROBLEM), query
        problem = await answer.json()
        assert (problem["code"], problem["parameter"]) == ("bad-request", parameter), query
    answer = await client.get("/api/history?series=errors&hours=2160&branch=T-652300-01")
    assert answer.status == 200

"""The branch daemon's own page at /ops: the same page, its snapshot, live over SSE."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.runtime.dashboard import add_branch_page
from gateway.runtime.dashboard.views import branch_view
from protocols.mqtt.state import DeviceKind, DeviceState, DeviceStatus
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from aiohttp.test_utils import TestClient


async def test_ops_page_snapshot_and_live_changes(aiohttp_client: object) -> None:
    """/ops serves the page; /ops/api/branch the view; a change is pushed on the next look."""
    state = {"status": DeviceStatus.ONLINE}

    def snapshot() -> dict[str, Any]:
        device = DeviceState("printer-1", DeviceKind.PRINTER, state["status"], None, "t")
        return branch_view(
            "T-652300-01",
            presence="online",
            presence_reason=None,
            presence_since=None,
            devices=[device],
            reports={},
        )

    clock = FakeClock(autojump=False)
    app = web.Application()
    add_branch_page(app, snapshot, clock=clock, interval=2.0)
    assert callable(aiohttp_client)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    page = await (await client.get("/ops")).text()
    assert 'data-mode="branch"' in page
    assert 'data-api="/ops/api"' in page
    assert (await client.get("/ops/static/dashboard.css")).status == 200
    view = await (await client.get("/ops/api/branch")).json()
    assert view["counts"] == {"online": 1, "busy": 0, "error": 0, "offline": 0}

    response = await client.get("/ops/api/events")
    assert await response.content.readline() == b"retry: 2000\n"
    await response.content.readline()
    assert await response.content.readline() == b"event: branch\n"
    assert b'"state":"online"' in await response.content.readline()
    await response.content.readline()
    state["status"] = DeviceStatus.ERROR
    await clock.wait_for_sleepers(1)
    await clock.advance(2.0)
    assert await asyncio.wait_for(response.content.readline(), 5) == b"event: branch\n"
    assert b'"state":"error"' in await asyncio.wait_for(response.content.readline(), 5)
    response.close()

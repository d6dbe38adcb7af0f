"""The monitor's web side: dashboard, JSON API, live updates (SSE), health and metrics.

=============================  ===========================================================
route                          answer
=============================  ===========================================================
``GET /``                      the dashboard page (province -> branch -> device)
``GET /static/...``            its script and style sheet (no build step, no CDN)
``GET /api/overview``          every branch's summary line and the totals
``GET /api/branches/{id}``     one branch: presence, devices, reports, active alerts
``GET /api/alerts``            active alerts (``?recent=1``: the newest, cleared included)
``POST /api/alerts/{id}/ack``  acknowledge, body ``{"by": "name"}``
``GET /api/history``           hourly ``series`` (``cards_issued``, ``cards_spoiled``,
                               ``errors``, ``devices_offline``), ``?branch=&hours=24``
``GET /api/events``            server-sent events: ``update`` with the changed branches
``GET /healthz``               liveness and a short status
``GET /metrics``               Prometheus exposition of the monitor's own metrics
=============================  ===========================================================

Errors are problem+json from the registry in ``gateway/problems.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import dashboard
from gateway.monitor.service import Monitor
from gateway.problems import (
    BAD_REQUEST,
    INTERNAL_ERROR,
    NOT_FOUND,
    ProblemError,
    problem_for_status,
    problem_response,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["MONITOR", "create_monitor_app"]

log = structlog.get_logger(__name__)

MONITOR: Final = web.AppKey("monitor", Monitor)
SERIES: Final = frozenset({"cards_issued", "cards_spoiled", "errors", "devices_offline"})
KEEPALIVE: Final = 15.0  # seconds between SSE comments on a quiet stream
MAX_HOURS: Final = 24 * 90


def create_monitor_app(monitor: Monitor) -> web.Application:
    """The monitor's application (see the module docstring)."""
    app = web.Application(middlewares=[_problems])
    app[MONITOR] = monitor
    app.router.add_get("/", _page)
    dashboard.add_static(app, "/static")
    app.router.add_get("/api/overview", _overview)
    app.router.add_get("/api/branches/{branch}", _branch)
    app.router.add_get("/api/alerts", _alerts)
    app.router.add_post("/api/alerts/{alert_id}/ack", _acknowledge)
    app.router.add_get("/api/history", _history)
    app.router.add_get("/api/events", _events)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    return app


@web.middleware
async def _problems(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProblemError as error:
        return problem_response(error, instance=request.path)
    except web.HTTPException as exc:
        if exc.status < 400:  # noqa: PLR2004 - redirects pass through
            raise
        http_error = ProblemError(problem_for_status(exc.status), detail=exc.reason)
        response = problem_response(http_error, instance=request.path)
        response.set_status(exc.status, exc.reason)
        return response
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled_error", path=request.path)
        internal = ProblemError(INTERNAL_ERROR, detail="The request failed unexpectedly.")
        return problem_response(internal, instance=request.path)


async def _page(_request: web.Request) -> web.Response:
    return dashboard.page_response(mode="province", api="api", static="static")


async def _overview(request: web.Request) -> web.Response:
    return web.json_response(request.app[MONITOR].overview())


async def _branch(request: web.Request) -> web.Response:
    name = request.match_info["branch"]
    view = request.app[MONITOR].branch(name)
    if view is None:
        raise ProblemError(
            NOT_FOUND,
            detail=f"No branch {name!r} has reported.",
            detail_zh="该网点没有上报过数据。",
        )
    return web.json_response(view)


async def _alerts(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    if request.query.get("recent"):
        recent = await monitor.store.recent_alerts()
        return web.json_response({"alerts": [a.to_json() for a in recent]})
    return web.json_response({"alerts": monitor.alerts()})


async def _acknowledge(request: web.Request) -> web.Response:
    try:
        alert_id = int(request.match_info["alert_id"])
        body = await request.json()
    except ValueError:
        raise ProblemError(
            BAD_REQUEST, detail='Give a numeric alert id and a JSON body {"by": "name"}.'
        ) from None
    by = body.get("by") if isinstance(body, dict) else None
    if not isinstance(by, str) or not 1 <= len(by.strip()) <= 64:  # noqa: PLR2004
        raise ProblemError(
            BAD_REQUEST,
            detail="'by' must name who acknowledges (1-64 characters).",
            detail_zh="请填写确认人（1-64个字符）。",
        )
    alert = await request.app[MONITOR].acknowledge(alert_id, by.strip())
    if alert is None:
        raise ProblemError(NOT_FOUND, detail=f"No alert {alert_id}.", detail_zh="告警不存在。")
    return web.json_response(alert.to_json())


async def _history(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    series = request.query.get("series", "cards_issued")
    try:
        hours = int(request.query.get("hours", "24"))
    except ValueError:
        hours = -1
    if series not in SERIES or not 1 <= hours <= MAX_HOURS:
        raise ProblemError(
            BAD_REQUEST,
            detail=f"series is one of {sorted(SERIES)}; hours is 1-{MAX_HOURS}.",
            detail_zh="参数无效。",
        )
    since = monitor.clock.now() - timedelta(hours=hours)
    points = await monitor.store.hourly(series, since, request.query.get("branch") or None)
    return web.json_response(
        {"series": series, "points": [{"hour": hour, "value": value} for hour, value in points]}
    )


async def _events(request: web.Request) -> web.StreamResponse:
    monitor = request.app[MONITOR]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    queue = monitor.listen()
    try:
        await response.write(b"retry: 2000\n\n")
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE):
                    update = await queue.get()
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if update is None:  # the monitor is stopping
                break
            data = json.dumps(update, ensure_ascii=False, separators=(",", ":"))
            await response.write(f"event: update\ndata: {data}\n\n".encode())
    except ConnectionResetError:
        pass
    finally:
        monitor.unlisten(queue)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", **request.app[MONITOR].ready()})


async def _metrics(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest(request.app[MONITOR].metrics.registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response

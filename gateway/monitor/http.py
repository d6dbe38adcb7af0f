"""The monitor's web side: dashboard, JSON API, live updates (SSE), health and metrics.

=============================  ===========================================================
route                          answer
=============================  ===========================================================
``GET /``                      the dashboard page (province -> branch -> device)
``GET /static/...``            its script and style sheet (no build step, no CDN)
``GET /api/overview``          every branch's summary line and the totals
``GET /api/branches/{id}``     one branch: presence, devices, reports, active alerts
``GET /api/branches/{id}/audit-checkpoints``
                               every audit checkpoint the branch sent, oldest period first
``GET /api/alerts``            active alerts (``?recent=1``: the newest, cleared included)
``POST /api/alerts/{id}/ack``  acknowledge, body ``{"by": "name"}``
``GET /api/history``           hourly ``series`` (``cards_issued``, ``cards_spoiled``,
                               ``errors``, ``devices_offline``), ``?branch=&hours=24``
``GET /api/events``            server-sent events: ``update`` with the changed branches
``GET /healthz``               liveness and a short status
``GET /metrics``               Prometheus exposition of the monitor's own metrics
=============================  ===========================================================

Errors are problem+json from the registry in ``gateway/runtime/problems.py``; a query
parameter, path segment or body the API cannot take is 400 ``bad-request``
naming it in ``parameter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.monitor.service import Monitor
from gateway.runtime import dashboard
from gateway.runtime.problems import (
    BAD_REQUEST,
    INTERNAL_ERROR,
    NOT_FOUND,
    ProblemError,
    problem_for_status,
    problem_response,
)
from protocols.mqtt.errors import TopicError
from protocols.mqtt.topics import check_segment

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["MONITOR", "create_monitor_app"]

log = structlog.get_logger(__name__)

MONITOR: Final = web.AppKey("monitor", Monitor)
SERIES: Final = frozenset({"cards_issued", "cards_spoiled", "errors", "devices_offline"})
KEEPALIVE: Final = 15.0  # seconds between SSE comments on a quiet stream
MAX_HOURS: Final = 24 * 90
MAX_ALERT_ID: Final = 2**31 - 1  # alert ids are an INTEGER column
MAX_ACK_BODY: Final = 4096  # bytes of an acknowledgement's body
_NUMBER: Final = re.compile(r"[0-9]{1,10}")


def create_monitor_app(monitor: Monitor) -> web.Application:
    """The monitor's application (see the module docstring)."""
    app = web.Application(middlewares=[_problems])
    app[MONITOR] = monitor
    app.router.add_get("/", _page)
    dashboard.add_static(app, "/static")
    app.router.add_get("/api/overview", _overview)
    app.router.add_get("/api/branches/{branch}", _branch)
    app.router.add_get("/api/branches/{branch}/audit-checkpoints", _audit_checkpoints)
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


def _branch_id(text: str) -> str:
    try:
        return check_segment(text, "branch")
    except TopicError:
        raise _bad(
            "branch", "branch is a branch id (1-64 of A-Z a-z 0-9 _ . -).", "branch 须为网点编号。"
        ) from None


async def _audit_checkpoints(request: web.Request) -> web.Response:
    """Every checkpoint kept for the branch (none yet: an empty list), with its verdict."""
    branch = _branch_id(request.match_info["branch"])
    checkpoints = await request.app[MONITOR].store.checkpoints(branch)
    return web.json_response({"branch": branch, "checkpoints": checkpoints})


async def _alerts(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    if request.query.get("recent"):
        recent = await monitor.store.recent_alerts()
        return web.json_response({"alerts": [a.to_json() for a in recent]})
    return web.json_response({"alerts": monitor.alerts()})


def _bad(parameter: str, detail: str, detail_zh: str) -> ProblemError:
    return ProblemError(BAD_REQUEST, detail=detail, detail_zh=detail_zh, parameter=parameter)


def _number(text: str, low: int, high: int) -> int | None:
    """``text`` as a whole number from ``low`` to ``high`` (plain ASCII digits), else ``None``."""
    if _NUMBER.fullmatch(text) is None or not low <= int(text) <= high:
        return None
    return int(text)


async def _acknowledge(request: web.Request) -> web.Response:
    text = request.match_info["alert_id"]
    if _NUMBER.fullmatch(text) is None:
        raise _bad("alert_id", "Give a numeric alert id.", "告警编号须为数字。")
    alert_id = int(text)
    if not 1 <= alert_id <= MAX_ALERT_ID:
        raise ProblemError(NOT_FOUND, detail=f"No alert {alert_id}.", detail_zh="告警不存在。")
    if request.content_length is not None and request.content_length > MAX_ACK_BODY:
        raise _bad("body", 'The body is {"by": "name"}.', '请求内容须为 {"by": "确认人"}。')
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested beyond reason
        body = None
    by = body.get("by") if isinstance(body, dict) else None
    # printable: no control characters, NUL or lone surrogates (none can be stored)
    if not isinstance(by, str) or not by.isprintable() or not 1 <= len(by.strip()) <= 64:  # noqa: PLR2004
        raise _bad(
            "by",
            "'by' must name who acknowledges (1-64 printable characters).",
            "请填写确认人（1-64个可打印字符）。",
        )
    alert = await request.app[MONITOR].acknowledge(alert_id, by.strip())
    if alert is None:
        raise ProblemError(NOT_FOUND, detail=f"No alert {alert_id}.", detail_zh="告警不存在。")
    return web.json_response(alert.to_json())


async def _history(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    series = request.query.get("series", "cards_issued")
    if series not in SERIES:
        raise _bad("series", f"series is one of {sorted(SERIES)}.", "series 参数无效。")
    hours = _number(request.query.get("hours", "24"), 1, MAX_HOURS)
    if hours is None:
        raise _bad("hours", f"hours is a whole number from 1 to {MAX_HOURS}.", "hours 参数无效。")
    branch = request.query.get("branch") or None
    if branch is not None:
        try:
            check_segment(branch, "branch")
        except TopicError:
            raise _bad(
                "branch",
                "branch is a branch id (1-64 of A-Z a-z 0-9 _ . -).",
                "branch 须为网点编号。",
            ) from None
    since = monitor.clock.now() - timedelta(hours=hours)
    points = await monitor.store.hourly(series, since, branch)
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

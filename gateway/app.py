"""The aiohttp application: middlewares, health, readiness and metrics endpoints.

:func:`create_app` builds the application from :class:`Services` (everything is
injected: engine, clock, random source, supervisor, metrics) and the teller API's
sections the daemon hands over, so tests build the same application the daemon
serves. Nothing here knows a feature: each section brings its routes, and the
daemon puts each feature's context under the section's own key.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import __version__
from gateway.runtime.http.auth import ACCESS_PROBLEMS
from gateway.runtime.http.kit import MAX_REQUEST_BODY
from gateway.runtime.http.openapi import add_document_routes
from gateway.runtime.http.ops import OpsGate
from gateway.runtime.migrate import current_revision
from gateway.runtime.problems import (
    INTERNAL_ERROR,
    NOT_READY,
    REFUSALS,
    REQUEST_ID,
    Problem,
    ProblemError,
    problem_for_status,
    problem_of,
    problem_response,
    refusal_key,
)
from gateway.runtime.refusals import Refusal

if TYPE_CHECKING:
    import random
    from enum import StrEnum

    from sqlalchemy.ext.asyncio import AsyncEngine

    from devices.clock import Clock
    from gateway.config import Config
    from gateway.runtime.http.kit import ApiSection
    from gateway.runtime.metrics import Metrics
    from gateway.runtime.supervisor import Supervisor
    from security.pki import CertificateInfo

__all__ = ["SERVICES", "Services", "create_app"]

log = structlog.get_logger(__name__)

#: A client-chosen request id is accepted if it looks like an id (no log injection).
_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
READINESS_TIMEOUT: Final = 3.0  # seconds for the database round trip in /readyz


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the HTTP layer uses, built by the daemon (or a test)."""

    config: Config
    engine: AsyncEngine
    supervisor: Supervisor
    metrics: Metrics
    clock: Clock
    rng: random.Random
    head_revision: str | None
    #: Certificates this daemon presents; their expiry is reported by /readyz.
    certificates: tuple[CertificateInfo, ...] = ()
    #: Who may read /metrics, /ops and the details of /readyz (``[server] ops_token``).
    ops: OpsGate = field(default_factory=lambda: OpsGate(None))


SERVICES: Final = web.AppKey("services", Services)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    services: Services,
    *,
    sections: Sequence[ApiSection] = (),
    bind: Callable[[web.Application], None] | None = None,
    extra_routes: Iterable[web.RouteDef] = (),
) -> web.Application:
    """Build the application.

    Args:
        services: What the middlewares and the health endpoints use.
        sections: The teller API's sections (none without a key store): their routes,
            and ``/openapi.json`` and ``/docs`` describing them.
        bind: Puts each feature's context on the application, before the sections mount.
        extra_routes: Handlers tests and the daemon add (the branch page).
    """
    app = web.Application(
        middlewares=[_context_middleware, _problem_middleware],
        client_max_size=MAX_REQUEST_BODY,  # each route reads with its own limit (read_body)
    )
    app[SERVICES] = services
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    if bind is not None:
        bind(app)
    refusals: dict[tuple[type[StrEnum], str], Problem] = {
        refusal_key(reason): problem for reason, problem in ACCESS_PROBLEMS.items()
    }
    for section in sections:
        section.add_routes(app)
        for reason, problem in section.problems.items():
            if refusals.setdefault(refusal_key(reason), problem) is not problem:
                raise ValueError(f"{reason!r} is mapped by two sections")
    app[REFUSALS] = refusals
    if sections:
        add_document_routes(app, sections)
    app.router.add_routes(list(extra_routes))
    services.metrics.build.info(
        {"version": __version__, "branch": services.config.branch.id},
    )
    return app


_QUIET_ROUTES: Final = frozenset({"/healthz", "/metrics"})


def _route_of(request: web.Request) -> str:
    info = request.match_info
    if info.http_exception is not None or info.route.resource is None:
        return "unmatched"
    return info.route.resource.canonical


@web.middleware
async def _context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind request id and terminal to the log context; log and measure each request."""
    services = request.app[SERVICES]
    given = request.headers.get("X-Request-ID", "")
    request_id = (
        given
        if _REQUEST_ID.match(given)
        else str(uuid.UUID(int=services.rng.getrandbits(128), version=4))
    )
    terminal = request.headers.get("X-Terminal-ID", "")
    context: dict[str, Any] = {"request_id": request_id}
    if _REQUEST_ID.match(terminal):
        context["terminal"] = terminal
    request[REQUEST_ID] = request_id
    started = services.clock.monotonic()
    route = _route_of(request)
    services.metrics.http_in_flight.inc()
    status = 500
    try:
        with structlog.contextvars.bound_contextvars(**context):
            response = await handler(request)
            status = response.status
            response.headers["X-Request-ID"] = request_id
            return response
    finally:
        elapsed = services.clock.monotonic() - started
        services.metrics.http_in_flight.dec()
        services.metrics.http_requests.labels(request.method, route, str(status)).inc()
        services.metrics.http_duration.labels(route).observe(elapsed)
        if route not in _QUIET_ROUTES:
            log.info(
                "http_request",
                method=request.method,
                path=request.path,
                status=status,
                ms=round(elapsed * 1000, 1),
                **context,
            )


@web.middleware
async def _problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into problem+json; log unexpected ones with their traceback."""
    request_id = request.get(REQUEST_ID)
    try:
        return await handler(request)
    except ProblemError as error:
        return problem_response(error, instance=request.path, request_id=request_id)
    except Refusal as refusal:
        refused = problem_of(request.app, refusal)
        if refused.problem is INTERNAL_ERROR:  # a reason no section maps: a programming error
            log.error("refusal_not_mapped", reason=repr(refusal.reason), path=request.path)  # noqa: TRY400 - no traceback: the reason says it all
        return problem_response(refused, instance=request.path, request_id=request_id)
    except web.HTTPException as exc:
        if exc.status < 400:  # noqa: PLR2004 - redirects and the like pass through
            raise
        http_error = ProblemError(problem_for_status(exc.status), detail=exc.reason)
        response = problem_response(http_error, instance=request.path, request_id=request_id)
        response.set_status(exc.status, exc.reason)
        if "Allow" in exc.headers:  # 405 must say which methods exist (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled_error", path=request.path)
        internal = ProblemError(
            INTERNAL_ERROR,
            detail="The request failed unexpectedly; quote the request id to support.",
            detail_zh="请求处理失败，请向技术支持提供请求编号。",
        )
        return problem_response(internal, instance=request.path, request_id=request_id)


async def index(request: web.Request) -> web.Response:
    """What this service is and where its endpoints are."""
    config = request.app[SERVICES].config
    return web.json_response(
        {
            "service": "sscard-branchd",
            "version": __version__,
            "branch": {"id": config.branch.id, "name": config.branch.name},
            "links": {"health": "/healthz", "ready": "/readyz", "metrics": "/metrics"},
        }
    )


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the event loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers and its schema is at this build's head."""
    services = request.app[SERVICES]
    checks: dict[str, Any] = {}
    ready = True
    try:
        async with asyncio.timeout(READINESS_TIMEOUT):
            current = await current_revision(services.engine)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness_database_failed", error=f"{type(exc).__name__}: {exc}")
        checks["database"] = {"ok": False, "error": type(exc).__name__}
        ready = False
    else:
        checks["database"] = {"ok": True}
        migrated = current == services.head_revision
        checks["migrations"] = {"ok": migrated, "current": current, "head": services.head_revision}
        ready = ready and migrated
    if services.certificates:
        now = services.clock.now()
        checks["certificates"] = {
            str(cert.path): {
                "ok": cert.days_left(now) > 0,
                "subject": cert.subject,
                "not_after": cert.not_after.isoformat(),
                "days_left": round(cert.days_left(now), 1),
                "expires_soon": cert.expires_soon(now),
            }
            for cert in services.certificates
        }
        ready = ready and all(c["ok"] for c in checks["certificates"].values())
    checks["tasks"] = {
        name: {"running": state.running, "restarts": state.restarts, "last_error": state.last_error}
        for name, state in services.supervisor.tasks.items()
    }
    services.metrics.ready.set(1 if ready else 0)
    if not services.ops.allows(request):  # the status only: details need the ops token
        checks = {"details": "send the ops token ([server] ops_token) to see the checks"}
    if not ready:
        raise ProblemError(
            NOT_READY,
            detail="A readiness check failed (database unreachable, schema not current: "
            "run `branchd db upgrade`, or a certificate expired); see `checks`.",
            detail_zh="就绪检查未通过（数据库不可达、数据库结构不是最新版本：请执行 "
            "`branchd db upgrade`，或证书已过期），详见 `checks`。",
            checks=checks,
        )
    return web.json_response({"status": "ready", "checks": checks})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition of this daemon's registry."""
    request.app[SERVICES].ops.require(request)
    registry = request.app[SERVICES].metrics.registry
    response = web.Response(body=generate_latest(registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response

"""The operations dashboard: one static page (plain HTML, JS and CSS) served by two programs.

- ``branchd monitor`` serves it at ``/`` for a whole province (province ->
  branch -> device), fed by its JSON API and server-sent events.
- The branch daemon serves it at ``/ops`` for its own branch:
  :func:`add_branch_page` adds the page, ``/ops/api/branch`` (the snapshot)
  and ``/ops/api/events`` (the snapshot again whenever it changes).

Both answer the same *branch view* (:mod:`gateway.runtime.dashboard.views`), so one
script draws both. No build step, no framework, nothing fetched from outside:
the machines have no internet.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from devices.clock import SystemClock
from gateway.runtime.http.ops import OpsGate

if TYPE_CHECKING:
    from collections.abc import Callable

    from devices.clock import Clock

__all__ = ["STATIC_DIR", "add_branch_page", "add_static", "page_response"]

STATIC_DIR: Final = Path(__file__).parent / "static"
BRANCH_PUSH_INTERVAL: Final = 2.0  # seconds between snapshot comparisons on /ops/api/events


def add_static(app: web.Application, prefix: str) -> None:
    """Serve the page's script and style sheet under ``prefix``."""
    app.router.add_static(prefix, STATIC_DIR, follow_symlinks=False, append_version=False)


def page_response(*, mode: str, api: str, static: str) -> web.Response:
    """The page, told its mode (``province`` or ``branch``) and where its API and files are."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    html = html.replace("{{MODE}}", mode).replace("{{API}}", api).replace("{{STATIC}}", static)
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def add_branch_page(
    app: web.Application,
    snapshot: Callable[[], dict[str, Any]],
    *,
    clock: Clock | None = None,
    interval: float = BRANCH_PUSH_INTERVAL,
    gate: OpsGate | None = None,
) -> None:
    """Serve the branch's own dashboard at ``/ops``.

    Args:
        app: The daemon's application.
        snapshot: Returns the branch view now (``gateway.runtime.dashboard.views.branch_view``).
        clock: Paces the live updates (the system clock by default).
        interval: Seconds between looks for a change.
        gate: The operations token every ``/ops`` request must carry (open without).
    """
    pace = clock or SystemClock()
    guard = gate or OpsGate(None)

    async def page(request: web.Request) -> web.Response:
        guard.require(request)
        return page_response(mode="branch", api="/ops/api", static="/ops/static")

    async def branch(request: web.Request) -> web.Response:
        guard.require(request)
        return web.json_response(snapshot())

    async def events(request: web.Request) -> web.StreamResponse:
        guard.require(request)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        last = ""
        with contextlib.suppress(ConnectionResetError):
            await response.write(b"retry: 2000\n\n")
            while True:
                data = json.dumps(snapshot(), ensure_ascii=False, separators=(",", ":"))
                if data != last:
                    await response.write(f"event: branch\ndata: {data}\n\n".encode())
                    last = data
                await pace.sleep(interval)
        return response

    app.router.add_get("/ops", page)
    app.router.add_get("/ops/api/branch", branch)
    app.router.add_get("/ops/api/events", events)
    add_static(app, "/ops/static")

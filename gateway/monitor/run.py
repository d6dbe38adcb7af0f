"""The ``branchd monitor`` process: start, serve until SIGTERM or SIGINT, stop cleanly."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from devices.backoff import BackoffPolicy
from gateway.monitor.http import create_monitor_app
from gateway.monitor.service import Monitor
from gateway.runtime.db import create_engine
from gateway.runtime.supervisor import Supervisor

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from devices.clock import Clock
    from gateway.monitor.settings import MonitorSettings

__all__ = ["run_monitor"]

log = structlog.get_logger(__name__)

SHUTDOWN_TIMEOUT = 5.0  # seconds for in-flight requests at stop (live streams end at once)


async def run_monitor(
    settings: MonitorSettings,
    *,
    clock: Clock,
    rng: random.Random,
    on_started: Callable[[Monitor, list[str]], None] | None = None,
) -> int:
    """Run the monitor until SIGTERM or SIGINT; return the exit status."""
    engine = create_engine(settings.database())
    monitor = Monitor(settings, engine=engine, clock=clock, rng=rng)
    supervisor = Supervisor(clock=clock, rng=rng, policy=BackoffPolicy(initial=1.0, maximum=30.0))
    runner = web.AppRunner(
        create_monitor_app(monitor),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await monitor.start()
        await runner.setup()
        site = web.TCPSite(runner, settings.server.host, settings.server.port)
        await site.start()
        urls = [f"http://{a[0]}:{a[1]}" for a in runner.addresses]
        for name, task in monitor.tasks():
            supervisor.spawn(name, task)
        log.info("monitor_serving", urls=urls, subscriptions=monitor.subscriptions())
        if on_started is not None:
            on_started(monitor, urls)
        await stop.wait()
        log.info("monitor_stopping")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        monitor.end_streams()
        await runner.cleanup()
        await supervisor.stop()
        await monitor.close()
        await engine.dispose()
    log.info("monitor_stopped")
    return 0

"""``branchd agent``: build the agent from its settings and run it until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING

import structlog

from devices.agent.server import DeviceAgent
from devices.encoder.pcsc import PcscEncoder
from devices.printer.driver import PrinterDriver
from protocols.mqtt.topics import BranchTopics

if TYPE_CHECKING:
    import random

    from devices.agent.interfaces import Encoder, Printer
    from devices.agent.settings import AgentSettings
    from devices.clock import Clock
    from devices.encoder.channel import EventListener, ReaderEvent

__all__ = ["run_agent"]

log = structlog.get_logger(__name__)


async def run_agent(settings: AgentSettings, *, clock: Clock, rng: random.Random) -> int:  # noqa: C901 - assembly, one step per device kind
    """Serve the configured devices until SIGTERM or SIGINT; return the exit status (0)."""
    topics = BranchTopics(settings.province, settings.branch)
    drivers: dict[str, PrinterDriver] = {}
    listeners: list[EventListener] = []

    def fan_out(event: ReaderEvent) -> None:
        for listener in listeners:
            listener(event)

    pcsc = (
        PcscEncoder(clock=clock, rng=rng, listener=fan_out, call_timeout=settings.pcsc_call_timeout)
        if settings.encoders
        else None
    )
    encoders: dict[str, tuple[Encoder, str]] = {}
    if pcsc is not None:
        encoders = {e.id: (pcsc, e.reader) for e in settings.encoders}
    printers: dict[str, Printer] = {}
    agent = DeviceAgent(
        settings.broker,
        agent_id=settings.agent_id,
        topics=topics,
        clock=clock,
        rng=rng,
        printers=printers,
        encoders=encoders,
    )
    for item in settings.printers:
        driver = PrinterDriver(
            item.url,
            clock=clock,
            rng=rng,
            baudrate=item.baudrate,
            status_interval=item.status_interval,
            **agent.registry.printer_hooks(item.id),
        )
        drivers[item.id] = driver
        printers[item.id] = driver
    listeners += [agent.registry.encoder_listener(e.id, e.reader) for e in settings.encoders]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "agent_starting", agent=settings.agent_id, printers=list(drivers), encoders=list(encoders)
    )
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(agent.run(), name="agent")]
            tasks += [
                group.create_task(d.run(), name=f"printer-{name}") for name, d in drivers.items()
            ]
            if pcsc is not None:
                tasks.append(group.create_task(pcsc.run(), name="pcsc-monitor"))
            await stop.wait()
            for task in tasks:
                task.cancel()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        for driver in drivers.values():
            await driver.close()
        if pcsc is not None:
            with contextlib.suppress(Exception):
                await pcsc.close()
    log.info("agent_stopped", agent=settings.agent_id)
    return 0

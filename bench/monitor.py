"""Monitor ingest against a raw subscriber, and two monitors (shared subscription) against one.

Method (every number is measured in this run, on this machine):

1. A private Mosquitto on a free loopback port, unlimited queues, no persistence.
2. Each trial's consumers first open a persistent MQTT 5 session (session
   expiry one hour) with their subscriptions, and go away.
3. The load generator (``bench/monitor_load.py``: 5,000 branches x 5 devices,
   presence, device states and five branch reports each) publishes every
   message with QoS 1; the broker queues them for the absent sessions.
4. The consumers come back as separate processes and drain their queues; the
   rate is messages / (last message - first connect).

Consumers: *raw* (an aiomqtt loop that only counts), *monitor* (the same loop
handing each message to :meth:`gateway.monitor.service.Monitor.ingest`, with
its alert and history tasks running on SQLite), and *two monitors* in one
shared group (``$share/bench/...``). Publishing is not timed, so the generator
takes no CPU from the consumers. Ratios: monitor / raw (goal >= 0.5) and two
monitors / one (goal >= 1.6).

Run: ``.venv/bin/python bench/monitor.py [--branches 5000 --devices 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parent))
from monitor_load import PROVINCE, messages, publish

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

IDLE = 2.0  # seconds without a message that end a drain
TOPICS = [
    f"sscard/v1/{PROVINCE}/+/daemon/state",
    f"sscard/v1/{PROVINCE}/+/devices/+/state",
    *(
        f"sscard/v1/{PROVINCE}/+/daemon/{r}"
        for r in ("applications", "outbox", "production", "queues", "stock")
    ),
]


def _session() -> Properties:
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600
    return properties


def _client(port: int, identifier: str, *, clean: bool) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=clean,
        properties=_session(),
        timeout=30,
    )


async def prepare(port: int, identifier: str, group: str | None) -> None:
    """Open the persistent session with its subscriptions, then leave."""
    async with _client(port, identifier, clean=True) as client:
        for topic in TOPICS:
            await client.subscribe(f"$share/{group}/{topic}" if group else topic, qos=1)


async def drain(port: int, identifier: str, role: str, database: str) -> dict[str, Any]:
    """Resume the session and take messages until the queue has been idle for IDLE seconds."""
    handle = None
    tasks: list[asyncio.Task[None]] = []
    engine = None
    if role == "monitor":
        from devices.clock import SystemClock  # noqa: PLC0415
        from gateway.monitor.service import Monitor  # noqa: PLC0415
        from gateway.monitor.settings import MonitorSettings  # noqa: PLC0415
        from gateway.persistence import create_engine  # noqa: PLC0415

        settings = MonitorSettings(province=PROVINCE, client_id=identifier)
        engine = create_engine(database)
        monitor = Monitor(settings, engine=engine, clock=SystemClock(), rng=random.Random(1))
        await monitor.start()
        handle = monitor.ingest
        for name, factory in monitor.tasks():
            if name != "monitor-mqtt":
                tasks.append(asyncio.create_task(_run(factory), name=name))
    count, first, last = 0, 0.0, 0.0
    connected = time.time()
    async with _client(port, identifier, clean=False) as client:
        connected = time.time()
        messages_ = client.messages
        while True:
            try:
                message = await asyncio.wait_for(anext(aiter(messages_)), IDLE)
            except TimeoutError:
                break
            if handle is not None:
                payload = message.payload
                handle(str(message.topic), payload if isinstance(payload, bytes) else b"")
            count += 1
            last = time.time()
            first = first or last
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if engine is not None:
        await engine.dispose()
    return {"count": count, "connected": connected, "last": last}


async def _run(factory: Callable[[], Awaitable[None]]) -> None:
    await factory()


def _mosquitto(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = directory / "mosquitto.conf"
    config.write_text(
        f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 1000\n",
        encoding="utf-8",
    )
    binary = shutil.which("mosquitto", path="/usr/sbin:/usr/bin") or "mosquitto"
    process = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)  # noqa: S603
    time.sleep(0.5)
    return process, port


async def trial(  # noqa: PLR0913, PLR0917 - one trial's whole description
    port: int,
    name: str,
    consumers: list[tuple[str, str]],
    group: str | None,
    batch: list[tuple[str, bytes]],
    directory: Path,
) -> float:
    """One trial; returns messages per second."""
    for identifier, _role in consumers:
        await prepare(port, identifier, group)
    started = time.time()
    await publish("127.0.0.1", port, batch)
    published = time.time() - started
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--drain",
            identifier,
            "--role",
            role,
            "--port",
            str(port),
            "--database",
            f"sqlite+aiosqlite:///{directory / (name + '.db')}",
            stdout=asyncio.subprocess.PIPE,
        )
        for identifier, role in consumers
    ]
    results = []
    for process in processes:
        out, _ = await process.communicate()
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    total = sum(r["count"] for r in results)
    elapsed = max(r["last"] for r in results) - min(r["connected"] for r in results)
    rate = total / elapsed
    counts = "+".join(str(r["count"]) for r in results)
    print(
        f"{name:26} {total:7d} msgs ({counts}) in {elapsed:6.2f} s = {rate:8.0f} msg/s"
        f"   (published in {published:.1f} s)"
    )
    if total != len(batch):
        print(f"  WARNING: expected {len(batch)} messages")
    return float(rate)


async def run(branches: int, devices: int) -> None:
    """All three trials and the two ratios."""
    batch = messages(branches, devices)
    directory = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    broker, port = _mosquitto(directory)
    try:
        print(f"{branches} branches x {devices} devices: {len(batch)} messages per trial")
        raw = await trial(port, "raw subscriber", [("raw-1", "raw")], None, batch, directory)
        one = await trial(port, "monitor", [("mon-1", "monitor")], None, batch, directory)
        two = await trial(
            port,
            "two monitors ($share)",
            [("mon-a", "monitor"), ("mon-b", "monitor")],
            "bench",
            batch,
            directory,
        )
    finally:
        broker.terminate()
        broker.wait()
        shutil.rmtree(directory, ignore_errors=True)
    print(f"monitor / raw subscriber      = {one / raw:.2f}  (goal >= 0.5)")
    print(f"two monitors / one monitor    = {two / one:.2f}  (goal >= 1.6)")


def main() -> None:
    """Parse arguments: orchestrate, or drain as one consumer process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--branches", type=int, default=5000)
    parser.add_argument("--devices", type=int, default=5)
    parser.add_argument("--drain", help=argparse.SUPPRESS)
    parser.add_argument("--role", default="raw", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--database", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drain:
        print(json.dumps(asyncio.run(drain(args.port, args.drain, args.role, args.database))))
        return
    asyncio.run(run(args.branches, args.devices))


if __name__ == "__main__":
    main()

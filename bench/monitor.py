"""Monitor ingest against a raw subscriber, and two monitors (shared subscription) against one.

Method (every number is measured in this run, on this machine):

1. Each trial starts a private Mosquitto on a free loopback port (no
   persistence; 1,000 QoS 1 messages in flight and 10,000 queued per client)
   and its consumers, each a process of its own, subscribed with QoS 1 to the
   monitor's topic filters.
2. The load generator (``bench/monitor_load.py --rate``, its own process)
   publishes the telemetry of 5,000 branches x 5 devices (presence, device
   states, five branch reports) at a steady offered rate, QoS 1 and retained as
   branch daemons publish, cycling through pre-encoded rounds.
3. After ``--warmup`` seconds every process is asked for its count; after
   ``--window`` more seconds again. Throughput = messages processed in the
   window / window. CPU seconds of the broker, the generator and each consumer
   come from ``/proc/PID/stat`` over the same window; ``other`` is the rest of
   the machine's busy time (``/proc/stat``), i.e. processes not of this bench.
4. Trials alternate between the three set-ups (order rotated) ``--trials``
   times; the medians are compared.

Consumers: *raw* (aiomqtt, same filters and QoS, counts and decodes nothing),
*monitor* (:class:`gateway.monitor.service.Monitor` with its own MQTT session
and every background task: decode, state update, alert rules every second,
history and current-state writes every 5 s, on SQLite), *two monitors* in one
shared group (``$share/bench/...``; presence is subscribed by each monitor, as
in production, and they share one SQLite database, so each also syncs what
the other stored). The group's throughput counts each published message once.

Ratios printed: monitor / raw (goal >= 0.5) and two monitors / one (goal >=
1.6), each also per CPU second of the consumers (what the ratio would be if
every consumer had a core of its own).

Run: ``.venv/bin/python bench/monitor.py [--rate 8000 --trials 3 --window 15]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from monitor_load import PROVINCE

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")
SETUPS = ("raw subscriber", "monitor", "two monitors ($share)")


# ---------------------------------------------------------------- consumer processes


def _filters(group: str | None) -> list[str]:
    from gateway.monitor.service import topic_filters  # noqa: PLC0415 - only in consumers
    from gateway.monitor.settings import MonitorSettings  # noqa: PLC0415

    return topic_filters(MonitorSettings(province=PROVINCE, shared_group=group))


async def _stdin() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def _serve_counts(counts: Callable[[], dict[str, int]]) -> None:
    """Answer each ``count`` line on stdin with the counts; return at EOF."""
    print(json.dumps({"ready": True}), flush=True)
    reader = await _stdin()
    while line := await reader.readline():
        if line.strip() == b"count":
            print(json.dumps(counts()), flush=True)


async def raw_consumer(port: int, identifier: str) -> None:
    """Count messages on the monitor's filters; decode nothing."""
    counts = {"presence": 0, "other": 0}

    async def take(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if message.topic.value.endswith("/daemon/state"):
                counts["presence"] += 1
            else:
                counts["other"] += 1

    async with aiomqtt.Client(
        "127.0.0.1", port, identifier=identifier, protocol=aiomqtt.ProtocolVersion.V5
    ) as client:
        for topic in _filters(None):
            await client.subscribe(topic, qos=1)
        task = asyncio.create_task(take(client))
        await _serve_counts(lambda: dict(counts))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def monitor_consumer(port: int, identifier: str, group: str | None, database: str) -> None:
    """Run a whole :class:`Monitor` (its MQTT session and every background task)."""
    import random  # noqa: PLC0415

    from devices.agent.settings import BrokerSettings  # noqa: PLC0415
    from devices.clock import SystemClock  # noqa: PLC0415
    from gateway.monitor.service import Monitor  # noqa: PLC0415
    from gateway.monitor.settings import MonitorSettings  # noqa: PLC0415
    from gateway.runtime.db import create_engine  # noqa: PLC0415

    settings = MonitorSettings(
        province=PROVINCE,
        client_id=identifier,
        shared_group=group,
        broker=BrokerSettings(host="127.0.0.1", port=port),
    )
    engine = create_engine(database)
    monitor = Monitor(settings, engine=engine, clock=SystemClock(), rng=random.Random(1))
    await monitor.start()
    tasks = [asyncio.create_task(_run(factory), name=name) for name, factory in monitor.tasks()]
    registry = monitor.metrics.registry
    await asyncio.wait_for(monitor.session.connected.wait(), 30)
    while registry.get_sample_value("branchd_monitor_broker_connected") != 1:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # subscribed just after connecting

    def counts() -> dict[str, int]:
        taken = monitor.message_counts()
        presence = taken.pop("daemon_state")
        return {"presence": presence, "other": sum(taken.values())}

    await _serve_counts(counts)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await monitor.close()
    await engine.dispose()


async def _run(factory: Callable[[], Awaitable[None]]) -> None:
    await factory()


# ---------------------------------------------------------------- orchestration


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text(encoding="ascii").split()[1:9]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


@dataclass
class Child:
    """A process of the bench, answering ``count`` on stdin."""

    name: str
    process: asyncio.subprocess.Process

    async def ask(self) -> dict[str, int]:
        """Its counts now."""
        assert self.process.stdin is not None  # noqa: S101 - created with pipes
        assert self.process.stdout is not None  # noqa: S101
        self.process.stdin.write(b"count\n")
        await self.process.stdin.drain()
        return dict(json.loads(await asyncio.wait_for(self.process.stdout.readline(), 30)))

    async def ready(self) -> None:
        """Wait for its first line."""
        assert self.process.stdout is not None  # noqa: S101
        line = await asyncio.wait_for(self.process.stdout.readline(), 120)
        if not line:
            raise RuntimeError(f"{self.name} exited at start")

    async def close(self) -> None:
        """Close its stdin (it finishes) and reap it."""
        assert self.process.stdin is not None  # noqa: S101
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 60)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def _spawn(name: str, log: IO[bytes], *argv: str) -> Child:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    return Child(name, process)


async def _mosquitto(directory: Path) -> tuple[asyncio.subprocess.Process, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = directory / "mosquitto.conf"
    config.write_text(
        f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 10000\nmax_inflight_messages 1000\n",
        encoding="utf-8",
    )
    binary = shutil.which("mosquitto", path="/usr/sbin:/usr/bin") or "mosquitto"
    process = await asyncio.create_subprocess_exec(
        binary, "-c", str(config), stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None  # noqa: S101
    while b"running" not in (line := await asyncio.wait_for(process.stderr.readline(), 10)):
        if not line:
            raise RuntimeError("mosquitto exited at start")
    return process, port


@dataclass
class Trial:
    """What one trial measured over its window."""

    setup: str
    seconds: float
    offered: float  # messages/s the broker acknowledged from the generator
    consumed: float  # distinct published messages processed per second
    counts: list[int]
    cpu: dict[str, float] = field(default_factory=dict)  # share of one core, per process

    @property
    def consumer_cpu(self) -> float:
        """Cores the consumers used together."""
        return sum(v for k, v in self.cpu.items() if k.startswith("consumer"))


async def trial(setup: str, args: argparse.Namespace, directory: Path, number: int) -> Trial:
    """Run one set-up for warm-up + window; return its window's figures."""
    broker, port = await _mosquitto(directory)
    database = f"sqlite+aiosqlite:///{directory / f'trial-{number}.db'}"
    setups: dict[str, list[tuple[str, str | None]]] = {
        SETUPS[0]: [("raw", None)],
        SETUPS[1]: [("monitor", None)],
        SETUPS[2]: [("monitor", "bench"), ("monitor", "bench")],
    }
    roles = setups[setup]
    children: list[Child] = []
    with (directory / f"trial-{number}.log").open("ab") as log:
        try:
            for index, (role, group) in enumerate(roles):
                argv = [__file__, "--consumer", role, "--port", str(port)]
                argv += ["--identifier", f"{role}-{number}-{index}", "--database", database]
                argv += ["--group", group] if group else []
                children.append(await _spawn(f"consumer{index}", log, *argv))
                await children[-1].ready()
            generator = await _spawn(
                "generator",
                log,
                str(HERE / "monitor_load.py"),
                *("--port", str(port), "--rate", str(args.rate), "--rounds", str(args.rounds)),
                *("--branches", str(args.branches), "--devices", str(args.devices)),
            )
            children.append(generator)
            await generator.ready()
            await asyncio.sleep(args.warmup)
            pids = {c.name: c.process.pid for c in children} | {"broker": broker.pid}
            before = [await c.ask() for c in children]
            cpu0, machine0, started = {k: _cpu(p) for k, p in pids.items()}, _machine(), time.time()
            await asyncio.sleep(args.window)
            after = [await c.ask() for c in children]
            cpu1, machine1, seconds = (
                {k: _cpu(p) for k, p in pids.items()},
                _machine(),
                time.time() - started,
            )
        finally:
            for child in reversed(children):
                await child.close()
            broker.terminate()
            await broker.wait()
    cores = {k: (cpu1[k] - cpu0[k]) / seconds for k in pids}
    busy = (machine1[0] - machine0[0]) / seconds
    cores["other"] = max(0.0, busy - sum(cores.values()))
    consumers = [
        {k: a[k] - b[k] for k in ("presence", "other")}
        for b, a in zip(before[:-1], after[:-1], strict=True)
    ]
    # presence goes to every monitor; the rest of the topics to one member of the group
    distinct = sum(c["other"] for c in consumers) + max(c["presence"] for c in consumers)
    offered = (after[-1]["acked"] - before[-1]["acked"]) / seconds
    return Trial(
        setup,
        seconds,
        offered,
        distinct / seconds,
        [c["presence"] + c["other"] for c in consumers],
        cores,
    )


def _show(result: Trial) -> None:
    cpu = "  ".join(f"{k} {v:4.0%}" for k, v in result.cpu.items())
    counts = "+".join(str(c) for c in result.counts)
    print(
        f"  {result.setup:22} offered {result.offered:7.0f}/s  processed {result.consumed:7.0f}/s"
        f" ({counts})  cpu: {cpu}",
        flush=True,
    )


async def run(args: argparse.Namespace) -> None:
    """Alternate the three set-ups ``--trials`` times; print the medians and the ratios."""
    directory = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    results: dict[str, list[Trial]] = {s: [] for s in SETUPS}
    print(
        f"{args.branches} branches x {args.devices} devices, offered {args.rate:.0f} msg/s QoS 1,"
        f" warm-up {args.warmup:.0f} s, window {args.window:.0f} s, {args.trials} trials,"
        f" {os.cpu_count()} cores",
        flush=True,
    )
    try:
        number = 0
        for round_ in range(args.trials):
            print(f"trial {round_ + 1}", flush=True)
            order = SETUPS[round_ % 3 :] + SETUPS[: round_ % 3]
            for setup in order:
                number += 1
                result = await trial(setup, args, directory, number)
                results[setup].append(result)
                _show(result)
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    print("medians")
    medians = {}
    per_core = {}
    for setup, found in results.items():
        medians[setup] = statistics.median(r.consumed for r in found)
        per_core[setup] = statistics.median(r.consumed / r.consumer_cpu for r in found)
        cpu = {k: statistics.median(r.cpu[k] for r in found) for k in found[0].cpu}
        shares = "  ".join(f"{k} {v:4.0%}" for k, v in cpu.items())
        print(
            f"  {setup:22} {medians[setup]:7.0f} msg/s  {per_core[setup]:7.0f} msg per consumer"
            f" CPU second   cpu: {shares}"
        )
    raw, one, two = (medians[s] for s in SETUPS)
    raw_c, one_c, two_c = (per_core[s] for s in SETUPS)
    print(f"monitor / raw subscriber   = {one / raw:.2f}  (goal >= 0.5)", end="")
    print(f"   per consumer CPU second: {one_c / raw_c:.2f}")
    print(f"two monitors / one monitor = {two / one:.2f}  (goal >= 1.6)", end="")
    print(f"   per consumer CPU second: {two_c / one_c:.2f}")


def main() -> None:
    """Parse arguments: orchestrate, or be one consumer process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--branches", type=int, default=5000)
    parser.add_argument("--devices", type=int, default=5)
    parser.add_argument("--rate", type=float, default=8000.0, help="offered messages/s")
    parser.add_argument("--rounds", type=int, default=2, help="pre-encoded rounds to cycle")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before the window")
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured")
    parser.add_argument("--trials", type=int, default=3, help="trials per set-up")
    parser.add_argument("--keep", action="store_true", help="keep the logs and databases")
    parser.add_argument("--consumer", choices=("raw", "monitor"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--identifier", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--group", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--database", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consumer is not None:
        from gateway.runtime.logs import configure_logging  # noqa: PLC0415 - consumers only

        configure_logging(log_format="json")
        if args.consumer == "raw":
            asyncio.run(raw_consumer(args.port, args.identifier))
        else:
            asyncio.run(monitor_consumer(args.port, args.identifier, args.group, args.database))
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

"""Load generator: the telemetry of many simulated branches (5,000 x 5 devices by default).

Each branch publishes what a branch daemon publishes: its presence, the state of
each device (printers and encoders, with levels and counters), and the branch
reports (queues, production, stock, outbox, applications). States and levels are
drawn from a seeded ``random.Random``, so runs are comparable.

As a script it publishes to a broker, once (e.g. to watch a dashboard fill up)
or at a steady rate until stopped (``--rate``: the offered load of
``bench/monitor.py``)::

    python bench/monitor_load.py --port 1883 --branches 500 --rounds 10
    python bench/monitor_load.py --port 1883 --rate 8000

With ``--rate`` it cycles through ``--rounds`` pre-encoded rounds with QoS 1 and
retain, as branch daemons publish, on paho-mqtt's own network thread (cheaper
per message than an asyncio client, so one process can offer more than one
consumer takes). Each line ``count`` on standard input is answered with one
JSON line: messages handed to the client and messages the broker acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from protocols.mqtt import (
    ApplicationsReport,
    BranchTopics,
    OutboxReport,
    ProductionReport,
    QueuesReport,
    StockReport,
)
from protocols.mqtt.reports import FeederStock, HourCount
from protocols.mqtt.state import (
    DeviceKind,
    DeviceState,
    DeviceStatus,
    FeederLevel,
    Levels,
    Presence,
    PresenceState,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

PROVINCE = "650000"
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def branch_messages(
    index: int, devices: int, round_: int, rng: random.Random
) -> Iterator[tuple[str, bytes]]:
    """The messages of branch ``index`` in round ``round_``."""
    topics = BranchTopics(PROVINCE, f"B{index:05d}")
    at = _iso(START + timedelta(seconds=round_))
    online = rng.random() > 0.01  # noqa: PLR2004 - 1 % of branches are away
    presence = (
        PresenceState(Presence.ONLINE, at=at)
        if online
        else PresenceState(Presence.OFFLINE, "connection_lost")
    )
    yield topics.daemon_state(), presence.to_bytes()
    for number in range(devices):
        is_printer = number % 2 == 0
        status = rng.choices(list(DeviceStatus), weights=(90, 5, 3, 2))[0]
        levels = (
            Levels(
                rng.choices(list(FeederLevel), weights=(90, 8, 2))[0],
                "YMCKO",
                rng.randint(0, 500),
                reject_box_full=rng.random() < 0.01,  # noqa: PLR2004
                cover_open=False,
            )
            if is_printer
            else Levels()
        )
        name = f"{'printer' if is_printer else 'encoder'}-{number}"
        state = DeviceState(
            name,
            DeviceKind.PRINTER if is_printer else DeviceKind.ENCODER,
            status,
            "printer.jam" if status is DeviceStatus.ERROR else None,
            at,
            levels,
            {"commands": round_ * 10 + number, "errors": round_ * rng.randint(0, 2)},
        )
        yield topics.device_state(name), state.to_bytes()
    hour = _iso(START.replace(minute=0))
    yield (
        topics.daemon_report("queues"),
        QueuesReport(at, {"production": rng.randint(0, 5)}).to_bytes(),
    )
    yield (
        topics.daemon_report("production"),
        ProductionReport(at, (HourCount(hour, rng.randint(0, 30), rng.randint(0, 2)),)).to_bytes(),
    )
    yield (
        topics.daemon_report("stock"),
        StockReport(
            at, (FeederStock("printer-0", rng.randint(0, 500), 0, low=False),), reconciled=True
        ).to_bytes(),
    )
    yield topics.daemon_report("outbox"), OutboxReport(at, rng.randint(0, 20), 0).to_bytes()
    yield topics.daemon_report("applications"), ApplicationsReport(at, 10, 0).to_bytes()


def messages(
    branches: int = 5000, devices: int = 5, rounds: int = 1, seed: int = 7
) -> list[tuple[str, bytes]]:
    """Every message of ``rounds`` rounds over all branches (round by round)."""
    rng = random.Random(seed)
    return [
        message
        for round_ in range(rounds)
        for index in range(branches)
        for message in branch_messages(index, devices, round_, rng)
    ]


async def publish(
    host: str, port: int, batch: list[tuple[str, bytes]], *, qos: int = 1, window: int = 200
) -> None:
    """Publish ``batch`` (``window`` messages in flight at a time)."""
    async with aiomqtt.Client(
        host, port, identifier="load-generator", protocol=aiomqtt.ProtocolVersion.V5,
        max_queued_outgoing_messages=0,
    ) as client:  # fmt: skip
        for start in range(0, len(batch), window):
            await asyncio.gather(
                *(client.publish(t, p, qos=qos) for t, p in batch[start : start + window])
            )


TICK = 0.005  # seconds between pacing decisions
MAX_UNACKED = 1000  # unacknowledged publishes (paho's in-flight limit: nothing waits in its queue)


class PacedPublisher:
    """Publish a batch over and over at ``rate`` messages per second, QoS 1 and retained."""

    def __init__(self, host: str, port: int, batch: list[tuple[str, bytes]], rate: float) -> None:
        """Connect (the network loop runs on paho's thread)."""
        self.batch, self.rate = batch, rate
        self.sent = 0
        self.acked = 0
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id="load-generator",
            protocol=paho.MQTTv5,
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_publish(self, *_args: object) -> None:
        self.acked += 1

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; never run ahead of the rate, hold back when unacked."""
        started = time.monotonic()
        size = len(self.batch)
        while not stop.is_set():
            due = int((time.monotonic() - started) * self.rate)
            while self.sent < due and self.sent - self.acked < MAX_UNACKED:
                topic, payload = self.batch[self.sent % size]
                self.client.publish(topic, payload, qos=1, retain=True)
                self.sent += 1
            if self.sent < due and self.sent - self.acked >= MAX_UNACKED:
                started += TICK  # the broker lags: what is not published is not offered
            time.sleep(TICK)
        self.client.loop_stop()
        self.client.disconnect()


def _answer(publisher: PacedPublisher, stop: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "count":
            print(json.dumps({"sent": publisher.sent, "acked": publisher.acked}), flush=True)
    stop.set()


def main() -> None:
    """Publish simulated branches to a broker (once, or at ``--rate`` until stdin closes)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--branches", type=int, default=5000)
    parser.add_argument("--devices", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s, until stdin closes")
    args = parser.parse_args()
    batch = messages(args.branches, args.devices, args.rounds)
    if args.rate <= 0:
        asyncio.run(publish(args.host, args.port, batch))
        print(f"published {len(batch)} messages")
        return
    stop = threading.Event()
    publisher = PacedPublisher(args.host, args.port, batch, args.rate)
    threading.Thread(target=_answer, args=(publisher, stop), daemon=True).start()
    print(json.dumps({"ready": len(batch)}), flush=True)
    publisher.run(stop)


if __name__ == "__main__":
    main()

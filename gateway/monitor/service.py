"""The monitor: MQTT in, state and alerts in memory, history and alerts to the database.

One :class:`Monitor` per process. Its background tasks (run under the
:class:`~gateway.runtime.supervisor.Supervisor`):

- ``monitor-mqtt``: one broker session (reconnects with backoff) subscribed to
  the province's presence, device states and branch reports; each message goes
  through :meth:`Monitor.ingest` (parse, update the state, buffer samples).
- ``monitor-alerts``: every ``evaluate_interval`` runs the rules over the
  branches that changed or wait for a timer, and stores raises and clears.
- ``monitor-history``: every ``flush_interval`` writes buffered samples and the
  newest payload per topic in one transaction each.
- ``monitor-downsample``: folds old minute buckets into hours, drops old hours.
- ``monitor-push``: every ``push_interval`` tells connected browsers which
  branches changed.
- ``monitor-sync`` (shared group only): reads what fellow monitors stored.

Audit checkpoints (``.../audit/checkpoint``, QoS 1, not retained) are not
state: each is verified against the branch's public key from the settings
(``audit_keys``) and kept in the database as it arrives
(:meth:`Monitor.take_checkpoint`), every one of them.

With ``shared_group`` the device states and reports are subscribed as
``$share/{group}/...``: the broker hands each message to one monitor of the
group. Presence (``daemon/state``: one retained message per branch, changing
rarely) is subscribed by every monitor directly, so each one sees every branch
go offline at once. Retained messages are not delivered to shared
subscriptions (MQTT 5, 4.8.2): the state a monitor did not receive itself comes
from the shared database (``monitor_current``), read at start and every
``sync_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import structlog

from devices.agent.session import MqttSession
from gateway.monitor.alerts import RULES, AlertBook, conditions, needs_timer
from gateway.monitor.metrics import MonitorMetrics
from gateway.monitor.state import ProvinceState, Sample
from gateway.monitor.store import MonitorStore
from protocols.mqtt.anchors import (
    AuditCheckpoint,
    audit_checkpoint_filter,
    parse_audit_checkpoint_topic,
)
from protocols.mqtt.errors import MqttProtocolError
from protocols.mqtt.state import DeviceStatus, Presence
from protocols.mqtt.topics import REPORT_NAMES, ROOT
from security.audit import anchor_bytes, verify_with_public_key

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable

    import aiomqtt
    from sqlalchemy.ext.asyncio import AsyncEngine

    from devices.clock import Clock
    from gateway.monitor.alerts import Alert
    from gateway.monitor.settings import MonitorSettings

__all__ = ["Monitor", "topic_filters"]

log = structlog.get_logger(__name__)

MAX_BUFFERED_SAMPLES: Final = 500_000  # while the database is away; older ones are dropped
SYNC_MARGIN: Final = 5.0  # seconds re-read at each sync (clock skew between monitors)
LISTENER_QUEUE: Final = 16  # pushes a slow browser may fall behind before it is dropped


def topic_filters(settings: MonitorSettings) -> list[str]:
    """The topic filters a monitor with ``settings`` subscribes to (presence first)."""
    base = f"{ROOT}/{settings.province}/+"
    shared = [
        f"{base}/devices/+/state",
        *(f"{base}/daemon/{r}" for r in sorted(REPORT_NAMES)),
        audit_checkpoint_filter(settings.province),
    ]
    group = settings.shared_group
    if group is not None:
        shared = [f"$share/{group}/{topic}" for topic in shared]
    return [f"{base}/daemon/state", *shared]


class Monitor:
    """Everything one monitor process keeps (see the module docstring)."""

    def __init__(
        self,
        settings: MonitorSettings,
        *,
        engine: AsyncEngine,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        """Build the parts; nothing connects before :meth:`start` and the tasks."""
        self.settings = settings
        self.clock = clock
        self.state = ProvinceState(settings.province)
        self.book = AlertBook()
        self.metrics = MonitorMetrics()
        self.store = MonitorStore(engine)
        self.started_at = clock.now()
        self._samples: list[Sample] = []
        self._current: dict[str, tuple[bytes, float]] = {}
        self._dirty: set[str] = set()
        self._watch: set[str] = set()
        self._changed: set[str] = set()
        self._alerts_changed = False
        self._synced_until = 0.0
        self._audit_keys: dict[str, bytes | None] = {}
        self._listeners: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._kinds = {
            kind: self.metrics.messages.labels(kind)
            for kind in ("daemon_state", "device_state", *sorted(REPORT_NAMES))
        }
        self._counts: dict[str | None, int] = {}  # messages taken in since the last evaluation
        self._totals = dict.fromkeys(self._kinds, 0)  # and before
        self.session = MqttSession(
            settings.broker,
            identifier=settings.client_id,
            clock=clock,
            rng=rng,
            on_connect=self._subscribe,
            on_message=self._on_message,
            on_disconnect=lambda: self.metrics.broker_connected.set(0),
        )

    # ------------------------------------------------------------ intake

    def subscriptions(self) -> list[str]:
        """The topic filters this monitor subscribes to."""
        return topic_filters(self.settings)

    async def _subscribe(self) -> None:
        for topic in self.subscriptions():
            await self.session.subscribe(topic)
        self.metrics.broker_connected.set(1)
        log.info("monitor_subscribed", topics=self.subscriptions())

    async def _on_message(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        data = payload if isinstance(payload, bytes) else b""
        topic = str(message.topic)
        if topic.endswith("/audit/checkpoint"):
            await self.take_checkpoint(topic, data)
            return
        self.ingest(topic, data)

    def _audit_key(self, branch: str) -> bytes | None:
        """The branch's public key from the settings (read once; ``None``: none given)."""
        if branch not in self._audit_keys:
            path = self.settings.audit_key_path(branch)
            key = None
            if path is not None:
                try:
                    key = path.read_bytes()
                except OSError:
                    log.warning("audit_key_unreadable", branch=branch, path=str(path))
            self._audit_keys[branch] = key
        return self._audit_keys[branch]

    async def take_checkpoint(self, topic: str, payload: bytes) -> bool | None:
        """Verify and keep one audit checkpoint; return whether it verified.

        ``None``: not a checkpoint of this province (counted as rejected, not kept).
        One of a branch without a configured key is kept as unverified.
        """
        try:
            province, branch = parse_audit_checkpoint_topic(topic)
            message = AuditCheckpoint.from_bytes(payload)
        except MqttProtocolError:
            self.metrics.rejected.inc()
            return None
        if province != self.settings.province:
            self.metrics.rejected.inc()
            return None
        key = self._audit_key(branch)
        data = anchor_bytes(
            branch, message.start, message.end, message.last_seq, bytes.fromhex(message.last_hash)
        )
        verified = key is not None and verify_with_public_key(
            key, data, bytes.fromhex(message.signature)
        )
        fields = {
            "period_start": message.start,
            "period_end": message.end,
            "last_seq": message.last_seq,
            "last_hash": message.last_hash,
            "key_id": message.key_id,
            "key_version": message.key_version,
            "signature": message.signature,
        }
        new = await self.store.add_checkpoint(
            branch, fields, verified=verified, received=self.clock.now()
        )
        if new:
            self.metrics.audit_checkpoints.labels("verified" if verified else "unverified").inc()
            (log.info if verified else log.warning)(
                "audit_checkpoint_received",
                branch=branch,
                end=message.end,
                last_seq=message.last_seq,
                verified=verified,
                key_configured=key is not None,
            )
        return verified

    def ingest(
        self,
        topic: str,
        payload: bytes,
        received: datetime | None = None,
        *,
        mine: bool = True,
    ) -> str | None:
        """Apply one message; return the branch it changed.

        ``mine=False`` is a message another monitor already sampled and stored.
        """
        if not payload:  # a cleared retained message
            return None
        when = received or self.clock.now()
        branch, samples = self.state.apply(topic, payload, when, sample=mine)
        if branch is None:
            self.metrics.rejected.inc()
            return None
        if mine:
            parsed = self.state.topic(topic)  # remembered by apply
            kind = parsed.report if parsed.kind == "daemon_report" else parsed.kind
            self._counts[kind] = self._counts.get(kind, 0) + 1
            if samples and len(self._samples) < MAX_BUFFERED_SAMPLES:
                self._samples.extend(samples)
            self._current[topic] = (payload, when.timestamp())
        self._dirty.add(branch)
        self._changed.add(branch)
        return branch

    def message_counts(self) -> dict[str, int]:
        """Messages taken in so far by kind (``/metrics`` shows them at each evaluation)."""
        return {kind: total + self._counts.get(kind, 0) for kind, total in self._totals.items()}

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Create the schema, load the stored state and the active alerts."""
        await self.store.create()
        rows = await self.store.read_current()
        for topic, payload, received in rows:
            self.ingest(topic, payload, datetime.fromtimestamp(received, UTC), mine=False)
            self._synced_until = max(self._synced_until, received)
        for alert in await self.store.active_alerts():
            self.book.adopt(alert)
        self._changed.clear()
        log.info(
            "monitor_started",
            province=self.settings.province,
            branches=len(self.state.branches),
            alerts=self.book.total(),
        )

    def tasks(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """The background tasks to supervise."""
        found: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("monitor-mqtt", self.session.run),
            ("monitor-alerts", self._every(self.settings.alerts.evaluate_interval, self.evaluate)),
            ("monitor-history", self._every(self.settings.history.flush_interval, self.flush)),
            (
                "monitor-downsample",
                self._every(self.settings.history.downsample_interval, self.downsample),
            ),
            ("monitor-push", self._every(self.settings.server.push_interval, self.push)),
        ]
        if self.settings.shared_group is not None:
            found.append(("monitor-sync", self._every(self.settings.sync_interval, self.sync)))
        return found

    def _every(
        self, seconds: float, step: Callable[[], Awaitable[object]]
    ) -> Callable[[], Awaitable[None]]:
        async def loop() -> None:
            while True:
                await step()
                await self.clock.sleep(seconds)

        return loop

    async def close(self) -> None:
        """Write what is buffered (best effort)."""
        with contextlib.suppress(Exception):
            await self.flush()

    # ------------------------------------------------------------ alerts

    async def evaluate(self) -> None:
        """Run the rules over changed branches and those waiting for a timer."""
        now = self.clock.now()
        branches = self._dirty | self._watch
        self._dirty = set()
        all_raised: list[Alert] = []
        all_cleared: list[Alert] = []
        for name in branches:
            entry = self.state.branches.get(name)
            if entry is None:
                continue
            raised, cleared = self.book.update(
                name, conditions(entry, now, self.settings.alerts), now
            )
            if needs_timer(entry):
                self._watch.add(name)
            else:
                self._watch.discard(name)
            if raised or cleared:
                all_raised += raised
                all_cleared += cleared
                self._changed.add(name)
                self._alerts_changed = True
        await self.store.record(all_raised, all_cleared)
        for alert in all_raised:
            self.metrics.alerts_raised.labels(alert.rule).inc()
            log.warning(
                "alert_raised",
                alert=alert.key,
                rule=alert.rule,
                severity=alert.severity,
                detail=alert.detail,
            )
        for alert in all_cleared:
            self.metrics.alerts_cleared.labels(alert.rule).inc()
            log.info("alert_cleared", alert=alert.key)
        self._gauges()

    async def acknowledge(self, alert_id: int, by: str) -> Alert | None:
        """Acknowledge an alert; return it (``None``: no such alert)."""
        stored = await self.store.acknowledge(alert_id, by, self.clock.now())
        if stored is not None:
            active = self.book.find(stored.key)
            if active is not None and active.id == stored.id:
                active.acked_by, active.acked_at = stored.acked_by, stored.acked_at
            self._changed.add(stored.branch)
            self._alerts_changed = True
            log.info("alert_acknowledged", alert=stored.key, by=stored.acked_by)
        return stored

    def _gauges(self) -> None:
        counts, self._counts = self._counts, {}
        for kind, count in counts.items():
            counter = self._kinds.get(kind) if kind is not None else None
            if counter is not None and kind is not None:
                counter.inc(count)
                self._totals[kind] += count
        presence = {"online": 0, "offline": 0, "unknown": 0}
        devices = {s.value: 0 for s in DeviceStatus}
        for entry in self.state.branches.values():
            presence["unknown" if entry.presence is None else entry.presence.value] += 1
            for device in entry.devices.values():
                devices[device.state.state.value] += 1
        for name, count in presence.items():
            self.metrics.branches.labels(name).set(count)
        for name, count in devices.items():
            self.metrics.devices.labels(name).set(count)
        rules = dict.fromkeys(RULES, 0)
        for alert in self.book.active():
            rules[alert.rule] += 1
        for rule, count in rules.items():
            self.metrics.alerts_active.labels(rule).set(count)

    # ------------------------------------------------------------ storage

    async def flush(self) -> None:
        """Write buffered samples and the newest payloads; keep them on failure."""
        samples, self._samples = self._samples, []
        current, self._current = self._current, {}
        if not samples and not current:
            return
        started = self.clock.monotonic()
        try:
            await self.store.write_samples(samples)
            await self.store.write_current(current)
        except Exception:
            self.metrics.flush_failures.inc()
            self._samples = (samples + self._samples)[-MAX_BUFFERED_SAMPLES:]
            for topic, row in current.items():
                self._current.setdefault(topic, row)
            raise
        self.metrics.flush_seconds.observe(self.clock.monotonic() - started)

    async def downsample(self) -> None:
        """Fold and prune the history."""
        history = self.settings.history
        folded = await self.store.downsample(
            self.clock.now(), history.minute_hours, history.hour_days
        )
        if folded:
            log.info("history_downsampled", minute_rows=folded)

    async def sync(self) -> None:
        """Take what fellow monitors stored since the last sync, and their alert changes."""
        rows = await self.store.read_current(self._synced_until - SYNC_MARGIN)
        for topic, payload, received in rows:
            when = datetime.fromtimestamp(received, UTC)
            if not self.state.has(topic, when):  # not its own, nor synced before
                self.ingest(topic, payload, when, mine=False)
            self._synced_until = max(self._synced_until, received)
        for stored in await self.store.active_alerts():
            active = self.book.find(stored.key)
            if active is not None and stored.acked_at is not None and active.acked_at is None:
                active.acked_by, active.acked_at = stored.acked_by, stored.acked_at
                self._alerts_changed = True

    # ------------------------------------------------------------ views

    def overview(self) -> dict[str, Any]:
        """The province: every branch's summary line and the totals."""
        branches = [
            entry.summary(self.book.count(name))
            for name, entry in sorted(self.state.branches.items())
        ]
        presence = {"online": 0, "offline": 0, "unknown": 0}
        for line in branches:
            presence[line["presence"]] += 1
        return {
            "province": self.settings.province,
            "branches": branches,
            "presence": presence,
            "alerts": self.book.total(),
        }

    def branch(self, name: str) -> dict[str, Any] | None:
        """One branch's view, or ``None`` when unknown."""
        entry = self.state.branches.get(name)
        if entry is None:
            return None
        return entry.view([a.to_json() for a in self.book.active(name)])

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts, newest first."""
        return [a.to_json() for a in reversed(self.book.active())]

    def listen(self) -> asyncio.Queue[dict[str, Any] | None]:
        """A queue of live updates for one browser (``None``: the end); :meth:`unlisten` it."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(LISTENER_QUEUE)
        self._listeners.add(queue)
        self.metrics.sse_clients.set(len(self._listeners))
        return queue

    def unlisten(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        """Stop sending to ``queue``."""
        self._listeners.discard(queue)
        self.metrics.sse_clients.set(len(self._listeners))

    def end_streams(self) -> None:
        """Tell every live stream to finish (before the web server shuts down)."""
        for queue in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
            self.unlisten(queue)

    async def push(self) -> None:
        """Send the changed branches' summaries to every listening browser."""
        if not self._changed and not self._alerts_changed:
            return
        changed, self._changed = self._changed, set()
        update = {
            "branches": [
                self.state.branches[name].summary(self.book.count(name))
                for name in sorted(changed)
                if name in self.state.branches
            ],
            "alerts": self.book.total(),
            "alerts_changed": self._alerts_changed,
        }
        self._alerts_changed = False
        for queue in list(self._listeners):
            try:
                queue.put_nowait(update)
            except asyncio.QueueFull:
                self.unlisten(queue)  # it reconnects and reloads

    def ready(self) -> dict[str, Any]:
        """What ``/healthz`` reports."""
        return {
            "broker": self.session.connected.is_set(),
            "branches": len(self.state.branches),
            "offline": sum(
                1 for e in self.state.branches.values() if e.presence is Presence.OFFLINE
            ),
            "alerts": self.book.total(),
            "uptime_s": round((self.clock.now() - self.started_at) / timedelta(seconds=1), 1),
        }

"""The current state of every branch and device of a province, fed by MQTT messages.

:meth:`ProvinceState.apply` takes one message (topic, payload, when it was
received) and updates the branch it names: presence, a device's state, or one of
the branch reports. Newest wins per topic (by receive time), so re-applying a
message another monitor stored (shared subscription) is harmless. It returns
the history samples the message yields: error counts (the growth of each
device's ``errors`` counter), offline devices, and cards per hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from gateway.runtime.dashboard.views import branch_view
from protocols.mqtt.errors import MqttProtocolError
from protocols.mqtt.reports import ProductionReport, Report, decode_report
from protocols.mqtt.state import DeviceState, DeviceStatus, Presence, PresenceState
from protocols.mqtt.topics import ParsedTopic, parse_topic

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["BranchEntry", "DeviceEntry", "ProvinceState", "Sample", "parse_time"]

MINUTE = 60
HOUR = 3600
TOPIC_CACHE: Final = 262_144  # parsed topics kept (a province has ~11 per branch)
#: Largest count a history value keeps (floats are exact up to here); payloads may say more.
MAX_SAMPLE: Final = 2**53


def sample_value(count: int) -> float:
    """A count from a payload as a history value (JSON integers have no upper bound)."""
    return float(min(count, MAX_SAMPLE))


def parse_time(text: str | None, default: datetime) -> datetime:
    """An ISO 8601 time from a payload; ``default`` when absent, unreadable or naive.

    Also ``default`` off the calendar: a time within a day of year 1 or 9999 whose
    offset takes it past either end in UTC.
    """
    if not text:
        return default
    try:
        parsed = datetime.fromisoformat(text)
        return default if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return default


def iso(moment: datetime | None) -> str | None:
    """``moment`` as ISO 8601 UTC with milliseconds."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Sample:
    """One history value.

    Attributes:
        branch: The branch.
        series: ``errors``, ``devices_offline``, ``cards_issued`` or ``cards_spoiled``.
        resolution: ``m`` (minute bucket) or ``h`` (hour bucket).
        bucket: Start of the bucket, seconds since the epoch.
        value: The value.
        mode: How values of one bucket combine: ``sum`` or ``max``.
    """

    branch: str
    series: str
    resolution: Literal["m", "h"]
    bucket: int
    value: float
    mode: Literal["sum", "max"]


@dataclass(slots=True)
class DeviceEntry:
    """A device as last reported.

    Attributes:
        state: The last state.
        since: When it entered that state (the payload's time, else receive time).
    """

    state: DeviceState
    since: datetime


@dataclass(slots=True)
class BranchEntry:
    """A branch as last reported.

    Attributes:
        branch: The branch id.
        presence: The daemon's presence; ``None`` before any report.
        presence_reason: Why offline.
        presence_since: When the presence was received.
        devices: Devices by id.
        reports: Branch reports by name.
        received: Receive time per topic key (newest wins).
        errors_seen: Last ``errors`` counter per device (for the growth).
    """

    branch: str
    presence: Presence | None = None
    presence_reason: str | None = None
    presence_since: datetime | None = None
    devices: dict[str, DeviceEntry] = field(default_factory=dict)
    reports: dict[str, Report] = field(default_factory=dict)
    received: dict[str, datetime] = field(default_factory=dict)
    errors_seen: dict[str, int] = field(default_factory=dict)

    def offline_devices(self) -> int:
        """How many devices are offline."""
        return sum(1 for d in self.devices.values() if d.state.state is DeviceStatus.OFFLINE)

    def view(self, alerts: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
        """The branch view the dashboard draws."""
        return branch_view(
            self.branch,
            presence="unknown" if self.presence is None else self.presence.value,
            presence_reason=self.presence_reason,
            presence_since=iso(self.presence_since),
            devices=[d.state for d in self.devices.values()],
            reports=self.reports,
            alerts=alerts,
        )

    def summary(self, alerts: int) -> dict[str, Any]:
        """One line of the province overview."""
        counts = {"online": 0, "busy": 0, "error": 0, "offline": 0}
        for device in self.devices.values():
            counts[device.state.state.value] += 1
        production = self.reports.get("production")
        last = None
        if isinstance(production, ProductionReport) and production.hours:  # none before a card
            last = production.hours[-1]
        return {
            "branch": self.branch,
            "presence": "unknown" if self.presence is None else self.presence.value,
            "presence_since": iso(self.presence_since),
            "counts": counts,
            "alerts": alerts,
            "cards_last_hour": None if last is None else last.issued,
        }


class ProvinceState:
    """Every branch of one province (see the module docstring)."""

    def __init__(self, province: str) -> None:
        """Start knowing nothing."""
        self.province = province
        self.branches: dict[str, BranchEntry] = {}
        self.rejected = 0
        self._topics: dict[str, ParsedTopic] = {}

    def topic(self, topic: str) -> ParsedTopic:
        """``topic`` parsed (remembered: the same topics come again and again).

        Raises:
            TopicError: It is not a topic of the scheme.
        """
        parsed = self._topics.get(topic)
        if parsed is None:
            parsed = parse_topic(topic)
            if len(self._topics) >= TOPIC_CACHE:
                self._topics.clear()
            self._topics[topic] = parsed
        return parsed

    def has(self, topic: str, received: datetime) -> bool:
        """Whether a copy of ``topic`` received at ``received`` or later is applied already."""
        try:
            parsed = self.topic(topic)
        except MqttProtocolError:
            return False
        entry = self.branches.get(parsed.branch)
        previous = None if entry is None else entry.received.get(topic)
        return previous is not None and previous >= received

    def apply(
        self, topic: str, payload: bytes, received: datetime, *, sample: bool = True
    ) -> tuple[str | None, list[Sample]]:
        """Apply one message; return the branch it changed (or ``None``) and its samples.

        Messages that are not of the scheme, of another province, or not
        decodable are counted in :attr:`rejected` and change nothing.
        ``sample=False`` (a message another monitor already sampled) yields none.
        """
        try:
            parsed = self.topic(topic)
            if parsed.province != self.province:
                self.rejected += 1
                return None, []
            entry = self.branches.get(parsed.branch) or BranchEntry(parsed.branch)
            slot = topic
            previous = entry.received.get(slot)
            if previous is not None and previous > received:
                return None, []  # an older copy of something newer
            samples = self._apply(entry, parsed.kind, parsed.report, payload, received)
        except MqttProtocolError:
            self.rejected += 1
            return None, []
        entry.received[slot] = received
        self.branches[parsed.branch] = entry
        return parsed.branch, samples if sample else []

    def _apply(
        self,
        entry: BranchEntry,
        kind: str,
        report: str | None,
        payload: bytes,
        received: datetime,
    ) -> list[Sample]:
        if kind == "daemon_state":
            presence = PresenceState.from_bytes(payload)
            if presence.state is not entry.presence:
                entry.presence_since = received
            entry.presence, entry.presence_reason = presence.state, presence.reason
            return []
        if kind == "daemon_report" and report is not None:
            decoded = decode_report(report, payload)
            entry.reports[report] = decoded
            return self._production_samples(entry.branch, decoded)
        if kind == "device_state":
            return self._device(entry, DeviceState.from_bytes(payload), received)
        raise MqttProtocolError("not a monitored topic")

    @staticmethod
    def _production_samples(branch: str, report: Report) -> list[Sample]:
        if not isinstance(report, ProductionReport):
            return []
        samples = []
        for hour in report.hours:
            start = parse_time(hour.hour, datetime.min.replace(tzinfo=UTC))
            bucket = int(start.timestamp()) // HOUR * HOUR
            if bucket <= 0:
                continue
            issued, spoiled = sample_value(hour.issued), sample_value(hour.spoiled)
            samples.append(Sample(branch, "cards_issued", "h", bucket, issued, "max"))
            samples.append(Sample(branch, "cards_spoiled", "h", bucket, spoiled, "max"))
        return samples

    @staticmethod
    def _device(entry: BranchEntry, state: DeviceState, received: datetime) -> list[Sample]:
        old = entry.devices.get(state.device)
        since = parse_time(state.since, received)
        entry.devices[state.device] = DeviceEntry(state, min(since, received))
        minute = int(received.timestamp()) // MINUTE * MINUTE
        errors = state.counters.get("errors", 0)
        before = entry.errors_seen.get(state.device)
        entry.errors_seen[state.device] = errors
        samples = [
            Sample(entry.branch, "devices_offline", "m", minute, entry.offline_devices(), "max")
        ]
        grown = errors if before is None or errors < before else errors - before
        if old is not None and grown:
            samples.append(Sample(entry.branch, "errors", "m", minute, sample_value(grown), "sum"))
        return samples

"""Prometheus metrics of the monitor itself, on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["MonitorMetrics"]


class MonitorMetrics:
    """What ``/metrics`` of ``branchd monitor`` shows."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Create every metric on ``registry`` (a new one by default)."""
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "branchd_monitor_messages", "MQTT messages taken in, by kind", ["kind"], registry=r
        )
        self.rejected = Counter(
            "branchd_monitor_messages_rejected",
            "Messages refused (not of the topic scheme, other province, undecodable payload)",
            registry=r,
        )
        self.audit_checkpoints = Counter(
            "branchd_monitor_audit_checkpoints",
            "Audit checkpoints kept, by whether the branch's key verified them",
            ["verdict"],
            registry=r,
        )
        self.branches = Gauge(
            "branchd_monitor_branches", "Branches known, by presence", ["presence"], registry=r
        )
        self.devices = Gauge(
            "branchd_monitor_devices", "Devices known, by state", ["state"], registry=r
        )
        self.alerts_active = Gauge(
            "branchd_monitor_alerts_active", "Active alerts, by rule", ["rule"], registry=r
        )
        self.alerts_raised = Counter(
            "branchd_monitor_alerts_raised", "Alerts raised, by rule", ["rule"], registry=r
        )
        self.alerts_cleared = Counter(
            "branchd_monitor_alerts_cleared", "Alerts cleared, by rule", ["rule"], registry=r
        )
        self.flush_seconds = Histogram(
            "branchd_monitor_flush_seconds",
            "Time to write buffered history and current state",
            registry=r,
        )
        self.flush_failures = Counter(
            "branchd_monitor_flush_failures",
            "History writes that failed (kept for the next)",
            registry=r,
        )
        self.sse_clients = Gauge(
            "branchd_monitor_sse_clients", "Browsers connected for live updates", registry=r
        )
        self.broker_connected = Gauge(
            "branchd_monitor_broker_connected", "1 while the broker session is up", registry=r
        )

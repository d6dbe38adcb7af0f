"""Prometheus metrics of the daemon, on a registry of its own.

A registry per daemon (not the library's global one) lets tests build several
applications in one process and keeps ``/metrics`` to what we define.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

__all__ = ["Metrics"]


class Metrics:
    """The daemon's metrics; later subsystems add theirs on ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Create every metric on ``registry`` (a new one by default)."""
        self.registry = registry if registry is not None else CollectorRegistry()
        self.build = Info(
            "branchd_build", "Version and branch of this daemon", registry=self.registry
        )
        self.http_requests = Counter(
            "branchd_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "branchd_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["route"],
            registry=self.registry,
        )
        self.http_in_flight = Gauge(
            "branchd_http_requests_in_flight",
            "HTTP requests being handled now",
            registry=self.registry,
        )
        self.task_restarts = Counter(
            "branchd_task_restarts",
            "Background task crashes followed by a restart, by task",
            ["task"],
            registry=self.registry,
        )
        self.envelopes_refused = Counter(
            "branchd_envelopes_refused",
            "Upstream envelopes refused, by refusal code (bad signature, replay, ...)",
            ["code"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "branchd_ready",
            "1 when the last readiness check passed, 0 otherwise",
            registry=self.registry,
        )
        self.production_jobs = Counter(
            "branchd_production_jobs",
            "Production jobs ended, by outcome (issued or failed)",
            ["status"],
            registry=self.registry,
        )
        self.station_pauses = Counter(
            "branchd_station_pauses",
            "Stations paused by a printer or encoder error, by station and error code",
            ["station", "code"],
            registry=self.registry,
        )
        self.stock_mismatches = Counter(
            "branchd_stock_mismatches",
            "Stock reconciliations that found a difference",
            registry=self.registry,
        )

"""``branchd monitor --config FILE``: the central monitor's configuration (pydantic)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from devices.agent.settings import BrokerSettings, Name

__all__ = [
    "AlertSettings",
    "HistorySettings",
    "MonitorServerSettings",
    "MonitorSettings",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertSettings(_Frozen):
    """``[alerts]``: when a condition becomes an alert.

    Attributes:
        daemon_offline_after: A branch daemon offline this long, seconds (0: at once).
        device_offline_after: A device offline this long, seconds.
        ribbon_low: Ribbon with at most this many cards left.
        outbox_backlog: At least this many upstream messages waiting.
        certificate_days: A certificate expiring within this many days.
        evaluate_interval: How often the rules run, seconds.
    """

    daemon_offline_after: float = Field(default=60.0, ge=0)
    device_offline_after: float = Field(default=300.0, ge=0)
    ribbon_low: int = Field(default=20, ge=0)
    outbox_backlog: int = Field(default=100, ge=1)
    certificate_days: float = Field(default=30.0, ge=0)
    evaluate_interval: float = Field(default=1.0, gt=0, le=60)


class HistorySettings(_Frozen):
    """``[history]``: how history is kept and thinned out.

    Attributes:
        flush_interval: Write buffered samples this often, seconds.
        minute_hours: Keep minute buckets this many hours, then fold them into hours.
        hour_days: Keep hour buckets this many days.
        downsample_interval: Fold and prune this often, seconds.
    """

    flush_interval: float = Field(default=5.0, gt=0, le=300)
    minute_hours: float = Field(default=48.0, gt=0)
    hour_days: float = Field(default=90.0, gt=0)
    downsample_interval: float = Field(default=600.0, gt=0)


class MonitorServerSettings(_Frozen):
    """``[server]``: the dashboard, ``/healthz`` and ``/metrics``.

    Attributes:
        host: Address to listen on.
        port: Port (0: any free one).
        push_interval: Live updates to browsers at most this often, seconds.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    push_interval: float = Field(default=1.0, gt=0, le=60)


class MonitorSettings(_Frozen):
    """The monitor of one province.

    Attributes:
        province: The province code whose branches are watched.
        client_id: MQTT client identifier; unique per monitor process.
        shared_group: With a name, subscribe as ``$share/{name}/...`` so that several
            monitors split the messages (MQTT 5 shared subscription); then they must
            share one PostgreSQL database.
        sync_interval: In a shared group, read what the other monitors stored this
            often, seconds.
        database_url: SQLAlchemy URL; default SQLite ``monitor.db`` in ``data_dir``.
        data_dir: Where the default database goes (relative to the file).
        broker: The broker.
        server: The dashboard.
        alerts: Alert thresholds.
        history: History retention.
        audit_keys: Each branch's audit checkpoint public key: a PEM file (``branchd
            audit public-key``), relative to ``data_dir``. A checkpoint is verified
            with it; one of a branch without a key is stored as unverified.
    """

    province: Name
    client_id: Name = "branchd-monitor"
    shared_group: Name | None = None
    sync_interval: float = Field(default=2.0, gt=0, le=60)
    database_url: str | None = None
    data_dir: Path = Path()
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    server: MonitorServerSettings = Field(default_factory=MonitorServerSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    audit_keys: dict[Name, Path] = Field(default_factory=dict)

    def audit_key_path(self, branch: str) -> Path | None:
        """Where the public key of ``branch`` is, if it has one."""
        path = self.audit_keys.get(branch)
        return None if path is None else self.data_dir / path

    def database(self) -> str:
        """The database URL to use."""
        if self.database_url is not None:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'monitor.db'}"

"""The ``[upstream]`` configuration section: platform, bank, TLS, breaker, outbox.

Same style as :mod:`gateway.config` (``extra="forbid"``, frozen). Example::

    [upstream]
    peer_keys = "peer-keys.json"

    [upstream.tls]
    cert = "pki/branchd.pem"
    key = "pki/branchd.key"
    ca = "pki/ca.pem"

    [upstream.platform]
    url = "https://platform.example:8443/platform/650000/soap"
    dialect = "soap"
    receiver = "PLATFORM-650000"

    [upstream.bank]
    url = "https://esb.bank.example:8444/bank/esb"
    receiver = "BANK-CORE"
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BankSettings",
    "BreakerSettings",
    "OutboxSettings",
    "PlatformSettings",
    "UpstreamSettings",
    "UpstreamTlsSettings",
]

_NAME = r"^[\x21-\x7e]{1,64}$"  # an envelope text field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UpstreamTlsSettings(_Section):
    """The branch's client certificate and the CA that signs the upstream servers."""

    cert: Path
    key: Path
    ca: Path

    def resolved(self, base: Path) -> UpstreamTlsSettings:
        """The same settings with relative paths taken relative to ``base``."""
        return self.model_copy(
            update={name: base / getattr(self, name) for name in ("cert", "key", "ca")}
        )


class PlatformSettings(_Section):
    """The provincial platform."""

    url: str = Field(pattern=r"^https://", description="the platform endpoint (HTTPS)")
    #: ``json`` (saveCardOpen ...) or ``soap`` (applyNewCard ...).
    dialect: Literal["json", "soap"]
    #: The platform's envelope name.
    receiver: str = Field(pattern=_NAME)
    #: Seconds for one request and its answer.
    timeout: float = Field(default=10.0, gt=0, le=300)


class BankSettings(_Section):
    """The bank core (ESB-style JSON)."""

    url: str = Field(pattern=r"^https://")
    receiver: str = Field(default="BANK-CORE", pattern=_NAME)
    timeout: float = Field(default=10.0, gt=0, le=300)


class BreakerSettings(_Section):
    """When to stop calling a dead upstream system, and when to try again."""

    failure_threshold: int = Field(default=5, ge=1, le=1000)
    reset_timeout: float = Field(default=30.0, gt=0, le=3600)


class OutboxSettings(_Section):
    """The outbox relay."""

    batch_size: int = Field(default=100, ge=1, le=1000)
    max_in_flight: int = Field(default=2, ge=1, le=16)
    poll_interval: float = Field(default=2.0, gt=0, le=600)
    backoff_initial: float = Field(default=2.0, gt=0, le=3600)
    backoff_max: float = Field(default=300.0, gt=0, le=86400)
    #: Hours a message may wait before it becomes a dead letter.
    ttl_hours: float = Field(default=72.0, gt=0, le=24 * 90)
    #: The key store ENCRYPT key that seals payloads at rest.
    payload_key: str = Field(default="outbox-payload", pattern=r"^[A-Za-z0-9._-]{1,64}$")


class UpstreamSettings(_Section):
    """Everything upstream: ``[upstream]`` in ``branchd.toml``."""

    tls: UpstreamTlsSettings
    platform: PlatformSettings
    bank: BankSettings | None = None
    breaker: BreakerSettings = BreakerSettings()
    outbox: OutboxSettings = OutboxSettings()
    #: The shared peer-keys file: the upstream systems' public keys, and where the
    #: branch publishes its own (mode 0600).
    peer_keys: Path = Path("peer-keys.json")

    def resolved(self, base: Path) -> UpstreamSettings:
        """The same settings with relative paths taken relative to ``base``."""
        return self.model_copy(
            update={"tls": self.tls.resolved(base), "peer_keys": base / self.peer_keys}
        )

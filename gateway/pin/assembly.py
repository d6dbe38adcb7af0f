"""Build the window card services from the configuration and the daemon's parts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from prometheus_client import Counter

from gateway.pin.pads import DriverPinPad
from gateway.pin.service import CardServices

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.agent.interfaces import Encoder
    from devices.clock import Clock
    from gateway.audit import AuditLog
    from gateway.config import Config
    from gateway.devices import BranchDevices
    from gateway.keys import PersonalDataVault
    from gateway.metrics import Metrics
    from gateway.pin.pad import PinPad
    from gateway.upstream.assembly import Upstream
    from security.keystore import KeyStore

__all__ = ["build_card_services"]

log = structlog.get_logger(__name__)


def build_card_services(  # noqa: PLR0913 - the composition root's parts
    config: Config,
    *,
    store: KeyStore,
    vault: PersonalDataVault,
    upstream: Upstream | None,
    devices: BranchDevices | None,
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditLog,
    pads: Mapping[str, PinPad] | None = None,
    metrics: Metrics | None = None,
    clock: Clock | None = None,
) -> CardServices | None:
    """The services for ``[pin]``, or ``None`` without ``[pin]``, ``[upstream]`` or devices.

    Each window's encoder is looked up in ``[devices]`` (its PC/SC reader name,
    or the agent's device id); a window whose encoder is not there is logged
    and answers ``window-not-equipped``. PIN pads are the drivers of
    ``[[devices.pinpads]]`` (behind :class:`DriverPinPad`), unless ``pads`` names
    another for an id.
    With ``metrics``, every outcome is counted in ``branchd_card_services_total``
    (operation and outcome only: no card, holder or PIN).
    """
    settings = config.pin
    if settings is None:
        return None
    if upstream is None or devices is None or config.devices is None:
        log.warning("pin_services_disabled", reason="[pin] needs [upstream] and [devices]")
        return None
    encoders: dict[str, tuple[Encoder, str]] = {}
    for encoder in config.devices.encoders:
        found = devices.encoders.get(encoder.id)
        if found is not None:
            encoders[encoder.id] = (found, encoder.reader or encoder.id)
    for window in settings.windows:
        if window.encoder not in encoders:
            log.warning(
                "pin_window_without_encoder", terminal=window.terminal, encoder=window.encoder
            )
    # The windows' pads from [[devices.pinpads]] (their drivers run as daemon tasks).
    attached: dict[str, PinPad] = {
        pad_id: DriverPinPad(driver, store) for pad_id, driver in devices.pinpads.items()
    }
    attached.update(pads or {})
    for window in settings.windows:
        if window.pinpad not in attached:
            log.warning("pin_window_without_pad", terminal=window.terminal, pinpad=window.pinpad)
    return CardServices(
        settings=settings,
        keystore=store,
        platform=upstream.platform,
        breaker=upstream.breakers.get("platform"),
        sessions=sessions,
        audit=audit,
        region=config.branch.region,
        encoders=encoders,
        index=vault.index,
        pads=attached,
        upstream=upstream,
        on_outcome=_counter(metrics) if metrics is not None else None,
        clock=clock,
    )


def _counter(metrics: Metrics) -> Callable[[str, str], None]:
    """``branchd_card_services_total{operation, outcome}`` on the daemon's registry."""
    counter = Counter(
        "branchd_card_services",
        "Card services at the windows, by operation and outcome (completed, wrong-pin, "
        "locked, not-locked, application-blocked)",
        ["operation", "outcome"],
        registry=metrics.registry,
    )
    return lambda operation, outcome: counter.labels(operation, outcome).inc()

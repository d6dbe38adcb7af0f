"""The composition root's building blocks: one function per feature, called by the daemon.

Only this module (and the daemon, the command line and the demo above it) picks
concrete key stores, engines and transports; the features receive what they use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import structlog
from prometheus_client import Counter

from gateway.archive import routes as archive_routes
from gateway.archive.routes import ARCHIVE, ArchiveContext
from gateway.archive.store import ArchiveStore
from gateway.batches import routes as batches_routes
from gateway.batches.production import ControllerProduction
from gateway.batches.routes import BATCHES, BatchesContext
from gateway.batches.service import BatchService
from gateway.cardservices import routes as cardservices_routes
from gateway.cardservices.pads import DriverPinPad
from gateway.cardservices.routes import CARD_SERVICES, CardServicesContext
from gateway.cardservices.service import CardServices
from gateway.closing import routes as closing_routes
from gateway.closing.routes import CLOSING, ClosingContext
from gateway.closing.service import DayClosing
from gateway.issuance import routes as issuance_routes
from gateway.issuance.routes import ISSUANCE, IssuanceContext
from gateway.operations import routes as operations_routes
from gateway.operations.routes import OPERATIONS, OperationsContext
from gateway.operations.service import BusinessService
from gateway.operations.workdays import WorkCalendar
from gateway.runtime.http.auth import TerminalRegistry
from gateway.runtime.http.idempotency import Idempotency
from gateway.runtime.http.openapi import openapi_document as build_document
from gateway.upstream import routes as upstream_routes
from gateway.upstream.routes import UPSTREAM, UpstreamContext
from security.keystore import KeyStore, MasterKey, SoftwareKeyStore
from security.keystore.errors import MasterKeyError

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Mapping

    from aiohttp import web
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from devices.agent.interfaces import Encoder
    from devices.clock import Clock
    from gateway.audit.log import AuditLog, AuditQueue
    from gateway.cardservices.pad import PinPad
    from gateway.config import Config
    from gateway.issuance.service import ProductionService
    from gateway.people.vault import PersonalDataVault
    from gateway.runtime.devices import BranchDevices
    from gateway.runtime.http.kit import ApiSection
    from gateway.runtime.metrics import Metrics
    from gateway.upstream.assembly import Upstream

__all__ = [
    "SECTIONS",
    "TellerApi",
    "build_card_services",
    "build_teller_api",
    "open_keystore",
    "openapi_document",
]

log = structlog.get_logger(__name__)

#: The teller API's sections, in the order their routes are mounted.
SECTIONS: Final[tuple[ApiSection, ...]] = (
    operations_routes.SECTION,
    archive_routes.SECTION,
    cardservices_routes.SECTION,
    issuance_routes.SECTION,
    batches_routes.SECTION,
    upstream_routes.SECTION,
    closing_routes.SECTION,
)


def openapi_document() -> dict[str, Any]:
    """The teller API's OpenAPI 3.1 document (what ``/openapi.json`` serves)."""
    return build_document(SECTIONS)


@dataclass(frozen=True, slots=True)
class TellerApi:
    """Each feature's context of the teller API, built once by the daemon."""

    operations: OperationsContext
    archive: ArchiveContext
    cards: CardServicesContext
    issuance: IssuanceContext
    batches: BatchesContext
    upstream: UpstreamContext
    closing: ClosingContext

    def bind(self, app: web.Application) -> None:
        """Put each context under its section's key (``create_app``'s ``bind``)."""
        app[OPERATIONS] = self.operations
        app[ARCHIVE] = self.archive
        app[CARD_SERVICES] = self.cards
        app[ISSUANCE] = self.issuance
        app[BATCHES] = self.batches
        app[UPSTREAM] = self.upstream
        app[CLOSING] = self.closing


def build_teller_api(  # noqa: PLR0913 - the composition root's parts
    config: Config,
    *,
    vault: PersonalDataVault,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    audit: AuditLog,
    audit_reads: AuditQueue,
    clock: Clock,
    rng: random.Random,
    upstream: Upstream | None,
    production: ProductionService | None,
    cards: CardServices | None,
) -> TellerApi:
    """The business service, the batches and every section's context.

    The batches produce through the daemon's controller when ``[production]`` is
    configured (:class:`~gateway.batches.production.ControllerProduction`), and
    enable cards on the platform through the operations' outbox with ``[upstream]``.
    """
    rules = config.business
    calendar = (
        WorkCalendar.from_file(rules.calendar_file) if rules.calendar_file else WorkCalendar()
    )
    service = BusinessService(
        sessions=sessions,
        vault=vault,
        audit=audit,
        clock=clock,
        rng=rng,
        calendar=calendar,
        rules=rules,
        region=config.branch.region,
        upstream=upstream,
    )
    common: dict[str, Any] = {
        "terminals": TerminalRegistry(config.terminals),
        "idempotency": Idempotency(sessions, clock, rules.idempotency_hours),
        "clock": clock,
        "audit_reads": audit_reads,
    }
    archive = ArchiveStore(config.data_dir / "archive", sessions, clock)
    stations = config.production.stations if config.production is not None else ()
    return TellerApi(
        operations=OperationsContext(
            **common, service=service, sessions=sessions, vault=vault, engine=engine
        ),
        archive=ArchiveContext(**common, sessions=sessions, archive=archive),
        cards=CardServicesContext(**common, cards=cards, operations=service),
        issuance=IssuanceContext(
            **common,
            production=production,
            sessions=sessions,
            feeders=frozenset(s.feeder or s.name for s in stations),
        ),
        batches=BatchesContext(
            **common,
            batches=BatchService(
                sessions=sessions,
                vault=vault,
                archive=archive,
                audit=audit,
                business=service,
                clock=clock,
                rng=rng,
                calendar=calendar,
                region=config.branch.region,
                production=(
                    ControllerProduction(
                        production.controller, production.journal, production.started
                    )
                    if production is not None
                    else None
                ),
                outbox=upstream.outbox if upstream else None,
                on_enqueued=upstream.relay.wake if upstream else None,
            ),
        ),
        upstream=UpstreamContext(**common, sessions=sessions, notices=service.notices),
        closing=ClosingContext(
            **common,
            closing=DayClosing(sessions=sessions, upstream=upstream, audit=audit, clock=clock),
        ),
    )


def open_keystore(config: Config, *, create: bool = False) -> KeyStore | None:
    """Open the configured key store (``None`` when none is configured).

    Raises:
        KeyStoreError: the store cannot be opened (permissions, wrong master key, ...).
    """
    if config.keystore is None:
        return None
    secret = config.keystore.master_key.get_secret_value().strip()
    try:
        material = bytes.fromhex(secret)
    except ValueError:
        raise MasterKeyError("keystore.master_key", "not hex") from None
    master = MasterKey(material, source="keystore.master_key")
    path = config.keystore_path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return SoftwareKeyStore.open(path, master, create=create)


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
        vault=vault,
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

"""Upstream systems: the provincial platform, the bank core, the outbox and degraded mode.

* :mod:`gateway.upstream.platform`: :class:`PlatformClient` and its JSON and SOAP adapters;
* :mod:`gateway.upstream.bank`: :class:`BankClient` and its JSON adapter;
* :mod:`gateway.upstream.outbox`: queueable commands, :class:`Outbox`, dead letters;
* :mod:`gateway.upstream.relay`: the relay that sends the outbox;
* :mod:`gateway.upstream.breaker`: the circuit breaker of degraded mode;
* :mod:`gateway.upstream.transport`: enveloped documents over mutual TLS;
* :mod:`gateway.upstream.settings`: the ``[upstream]`` configuration section;
* :mod:`gateway.upstream.peers`: the peer-keys file (envelope keys of the upstream systems);
* :mod:`gateway.upstream.assembly`: wiring for the composition root.
"""

from gateway.upstream.assembly import Upstream, build_upstream
from gateway.upstream.bank import BankClient, FeeReceipt, JsonBankClient
from gateway.upstream.breaker import BreakerState, CircuitBreaker
from gateway.upstream.errors import (
    EnvelopeRefusedError,
    KeyServiceUnavailableError,
    LiveOnlyError,
    OutboxError,
    UnknownMessageError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamHttpError,
    UpstreamProtocolError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gateway.upstream.outbox import (
    ActivateFinancial,
    CancelCard,
    CancelLoss,
    ChangeInfo,
    DeadLetter,
    EnableCard,
    Enqueued,
    FreezeAccount,
    KeyStorePayloadProtector,
    Outbox,
    PayloadProtector,
    QueueableCommand,
    QueueStatus,
    ReportLoss,
    RequestElectronicCard,
    ReturnCardData,
    UnfreezeAccount,
    list_dead_letters,
    retry_dead_letter,
)
from gateway.upstream.peers import PeerKeysFile, PeerKeysFileError, publish_identity, read_peer_keys
from gateway.upstream.platform import (
    Applicant,
    ApplyResult,
    AppState,
    CardData,
    CardRef,
    DialectPlatformClient,
    KeyServiceContext,
    LossType,
    PlatformClient,
    ProductionData,
    json_platform_client,
    pin_block_account,
    soap_platform_client,
)
from gateway.upstream.relay import OutboxSender, Relay
from gateway.upstream.settings import UpstreamSettings
from gateway.upstream.transport import EnvelopeChannel

__all__ = [
    "ActivateFinancial",
    "AppState",
    "Applicant",
    "ApplyResult",
    "BankClient",
    "BreakerState",
    "CancelCard",
    "CancelLoss",
    "CardData",
    "CardRef",
    "ChangeInfo",
    "CircuitBreaker",
    "DeadLetter",
    "DialectPlatformClient",
    "EnableCard",
    "Enqueued",
    "EnvelopeChannel",
    "EnvelopeRefusedError",
    "FeeReceipt",
    "FreezeAccount",
    "JsonBankClient",
    "KeyServiceContext",
    "KeyServiceUnavailableError",
    "KeyStorePayloadProtector",
    "LiveOnlyError",
    "LossType",
    "Outbox",
    "OutboxError",
    "OutboxSender",
    "PayloadProtector",
    "PeerKeysFile",
    "PeerKeysFileError",
    "PlatformClient",
    "ProductionData",
    "QueueStatus",
    "QueueableCommand",
    "Relay",
    "ReportLoss",
    "RequestElectronicCard",
    "ReturnCardData",
    "UnfreezeAccount",
    "UnknownMessageError",
    "Upstream",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamHttpError",
    "UpstreamProtocolError",
    "UpstreamRejectedError",
    "UpstreamSettings",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
    "build_upstream",
    "json_platform_client",
    "list_dead_letters",
    "pin_block_account",
    "publish_identity",
    "read_peer_keys",
    "retry_dead_letter",
    "soap_platform_client",
]

"""Card production controller: jobs, the encode -> verify -> print -> QC pipeline, stock.

:class:`ProductionController` runs instant-issuance jobs on printer+encoder
:class:`Station` objects, journaling every step before it acts through a
:class:`~production.ports.Journal`; :class:`StockLedger` keeps the blank-card
stock and the spoiled-card ledger. See docs/production.md.
"""

from production.controller import ProductionController, ProductionSettings, Station, StationView
from production.errors import (
    ApprovalRequiredError,
    CardFaultError,
    ChipWriteError,
    DeviceOfflineError,
    JobFailedError,
    NoBlanksError,
    NoEncoderError,
    NoStationError,
    PreconditionError,
    ProductionError,
    StockError,
    UnknownJobError,
    UpstreamRefusedError,
    VerifyMismatchError,
)
from production.keys import LocalKeyService
from production.memory import MemoryJournal
from production.model import (
    ChipFacts,
    JobRecord,
    JobStatus,
    Order,
    Phase,
    Priority,
    StepEvent,
    StepName,
    StockEntry,
    StockKind,
)
from production.ports import (
    BankPort,
    EncoderPort,
    Journal,
    KeyRequest,
    KeyService,
    PlatformPort,
    PreOpened,
    PrinterPort,
    QcVerdict,
    QualityCheck,
    ReturnData,
)
from production.stock import Reconciliation, StockBalance, StockLedger
from production.surface import CardFace, CardLayout, render_panels

__all__ = [
    "ApprovalRequiredError",
    "BankPort",
    "CardFace",
    "CardFaultError",
    "CardLayout",
    "ChipFacts",
    "ChipWriteError",
    "DeviceOfflineError",
    "EncoderPort",
    "JobFailedError",
    "JobRecord",
    "JobStatus",
    "Journal",
    "KeyRequest",
    "KeyService",
    "LocalKeyService",
    "MemoryJournal",
    "NoBlanksError",
    "NoEncoderError",
    "NoStationError",
    "Order",
    "Phase",
    "PlatformPort",
    "PreOpened",
    "PreconditionError",
    "PrinterPort",
    "Priority",
    "ProductionController",
    "ProductionError",
    "ProductionSettings",
    "QcVerdict",
    "QualityCheck",
    "Reconciliation",
    "ReturnData",
    "Station",
    "StationView",
    "StepEvent",
    "StepName",
    "StockBalance",
    "StockEntry",
    "StockError",
    "StockKind",
    "StockLedger",
    "UnknownJobError",
    "UpstreamRefusedError",
    "VerifyMismatchError",
    "render_panels",
]

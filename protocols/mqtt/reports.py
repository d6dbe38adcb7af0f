"""Branch reports (telemetry schema version 2): the daemon's business state, retained.

One retained message per report on ``sscard/v1/{province}/{branch}/daemon/{report}``::

    queues        {"v": 2, "at": str, "queues": {name: depth, ...}}
    production    {"v": 2, "at": str, "hours": [{"hour": str, "issued": n, "spoiled": n}, ...]}
    stock         {"v": 2, "at": str, "reconciled": bool | null, "problems": n,
                   "checked_at": str | null,
                   "feeders": [{"feeder": str, "remaining": n, "in_process": n, "low": bool}]}
    outbox        {"v": 2, "at": str, "pending": n, "oldest_pending_at": str | null,
                   "dead_letters": n}
    applications  {"v": 2, "at": str, "open": n, "overdue": n, "oldest_due": str | null}
    certificates  {"v": 1, "at": str, "certificates": [{"subject": str, "not_after": str,
                   "days_left": float, "expires_soon": bool}]}

A report is the whole current picture, so the broker's retained copy is all a
monitor needs (a branch that was away from the broker publishes its newest
report on reconnect; nothing accumulates). ``production`` carries the last
hours (at most 48), so a monitor that starts late still draws the day. Decoders
raise only :class:`~protocols.mqtt.errors.PayloadError`. Counts are
non-negative integers; ``at`` and the other times are ISO 8601 strings the
caller formats (no clock is read here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from protocols.mqtt import _json
from protocols.mqtt.errors import PayloadError

__all__ = [
    "REPORTS",
    "ApplicationsReport",
    "CertificateEntry",
    "CertificatesReport",
    "FeederStock",
    "HourCount",
    "OutboxReport",
    "ProductionReport",
    "QueuesReport",
    "Report",
    "StockReport",
    "decode_report",
]

_MAX_ITEMS: Final = 64  # queues, feeders, certificates in one report
_MAX_HOURS: Final = 48  # hours of production history in one report
_MAX_TEXT: Final = 200  # characters of a name or subject


def _count(data: dict[str, Any], key: str) -> int:
    value = _json.field(data, key, int)
    if value < 0:
        raise PayloadError(f"{key!r} must not be negative")
    return value


def _text(data: dict[str, Any], key: str) -> str:
    value = _json.field(data, key, str)
    if not value or len(value) > _MAX_TEXT:
        raise PayloadError(f"{key!r} must be 1-{_MAX_TEXT} characters")
    return value


def _items(data: dict[str, Any], key: str, limit: int = _MAX_ITEMS) -> list[dict[str, Any]]:
    value = data.get(key)
    if not isinstance(value, list) or len(value) > limit:
        raise PayloadError(f"{key!r} must be a list of at most {limit} objects")
    if not all(isinstance(item, dict) for item in value):
        raise PayloadError(f"{key!r} must hold objects")
    return value


def _days(data: dict[str, Any]) -> float:
    days = data.get("days_left")
    if not isinstance(days, int | float) or isinstance(days, bool):
        raise PayloadError("'days_left' must be a number")
    try:
        return float(days)
    except OverflowError:  # an integer of hundreds of digits is valid JSON
        raise PayloadError("'days_left' is out of range") from None


def _load(payload: bytes) -> dict[str, Any]:
    return _json.load_object(payload, _json.TELEMETRY_VERSIONS)


def _dump(data: dict[str, Any]) -> bytes:
    return _json.dump_object(data, _json.TELEMETRY_VERSION)


@dataclass(frozen=True, slots=True)
class QueuesReport:
    """Depths of the daemon's work queues (production jobs, audit writes, ...).

    Attributes:
        at: When the depths were read.
        queues: Queue name to number of waiting items.
    """

    at: str
    queues: dict[str, int] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Encode as JSON."""
        return _dump({"at": self.at, "queues": dict(sorted(self.queues.items()))})

    @classmethod
    def from_bytes(cls, payload: bytes) -> QueuesReport:
        """Decode; raises :class:`PayloadError` on anything else."""
        data = _load(payload)
        queues = data.get("queues")
        if not isinstance(queues, dict) or len(queues) > _MAX_ITEMS:
            raise PayloadError("'queues' must be an object of at most 64 depths")
        for name in queues:
            if len(name) > _MAX_TEXT:
                raise PayloadError("a queue name is too long")
            _count(queues, name)
        return cls(_json.field(data, "at", str), dict(queues))


@dataclass(frozen=True, slots=True)
class HourCount:
    """Cards finished in one hour.

    Attributes:
        hour: Start of the hour (ISO 8601 UTC, e.g. ``2026-11-23T09:00:00Z``).
        issued: Good cards handed over in that hour.
        spoiled: Cards spoiled in that hour.
    """

    hour: str
    issued: int
    spoiled: int


@dataclass(frozen=True, slots=True)
class ProductionReport:
    """Cards per hour over the last hours, the running hour last.

    Attributes:
        at: When it was counted.
        hours: At most 48 hours, oldest first.
    """

    at: str
    hours: tuple[HourCount, ...] = ()

    def to_bytes(self) -> bytes:
        """Encode as JSON."""
        hours = [{"hour": h.hour, "issued": h.issued, "spoiled": h.spoiled} for h in self.hours]
        return _dump({"at": self.at, "hours": hours})

    @classmethod
    def from_bytes(cls, payload: bytes) -> ProductionReport:
        """Decode; raises :class:`PayloadError` on anything else."""
        data = _load(payload)
        hours = tuple(
            HourCount(_text(h, "hour"), _count(h, "issued"), _count(h, "spoiled"))
            for h in _items(data, "hours", _MAX_HOURS)
        )
        return cls(_json.field(data, "at", str), hours)


@dataclass(frozen=True, slots=True)
class FeederStock:
    """Blank cards of one feeder as the stock ledger counts them.

    Attributes:
        feeder: The feeder (usually the printer's device id).
        remaining: Blanks the ledger says are in the feeder.
        in_process: Cards taken but neither issued nor spoiled yet.
        low: Whether ``remaining`` is at or below the branch's reorder level.
    """

    feeder: str
    remaining: int
    in_process: int
    low: bool


@dataclass(frozen=True, slots=True)
class StockReport:
    """Card stock and the last reconciliation (loaded = issued + spoiled + remaining).

    Attributes:
        at: When it was counted.
        feeders: Per feeder.
        reconciled: Whether the last reconciliation found no difference; ``None``
            before the first one.
        problems: How many differences the last reconciliation found.
        checked_at: When the last reconciliation was made.
    """

    at: str
    feeders: tuple[FeederStock, ...] = ()
    reconciled: bool | None = None
    problems: int = 0
    checked_at: str | None = None

    def to_bytes(self) -> bytes:
        """Encode as JSON."""
        feeders = [
            {"feeder": f.feeder, "remaining": f.remaining, "in_process": f.in_process, "low": f.low}
            for f in self.feeders
        ]
        return _dump(
            {
                "at": self.at,
                "reconciled": self.reconciled,
                "problems": self.problems,
                "checked_at": self.checked_at,
                "feeders": feeders,
            }
        )

    @classmethod
    def from_bytes(cls, payload: bytes) -> StockReport:
        """Decode; raises :class:`PayloadError` on anything else."""
        data = _load(payload)
        feeders = tuple(
            FeederStock(
                _text(f, "feeder"),
                _json.field(f, "remaining", int),  # a ledger can show a deficit
                _count(f, "in_process"),
                _json.field(f, "low", bool),
            )
            for f in _items(data, "feeders")
        )
        return cls(
            _json.field(data, "at", str),
            feeders,
            _json.optional(data, "reconciled", bool),
            _count(data, "problems"),
            _json.optional(data, "checked_at", str),
        )


@dataclass(frozen=True, slots=True)
class OutboxReport:
    """The upstream outbox: messages waiting for delivery and expired ones.

    Attributes:
        at: When it was counted.
        pending: Messages not yet delivered.
        dead_letters: Messages that expired undelivered (ops must look).
        oldest_pending_at: When the oldest pending message was queued.
    """

    at: str
    pending: int
    dead_letters: int
    oldest_pending_at: str | None = None

    def to_bytes(self) -> bytes:
        """Encode as JSON."""
        return _dump(
            {
                "at": self.at,
                "pending": self.pending,
                "oldest_pending_at": self.oldest_pending_at,
                "dead_letters": self.dead_letters,
            }
        )

    @classmethod
    def from_bytes(cls, payload: bytes) -> OutboxReport:
        """Decode; raises :class:`PayloadError` on anything else."""
        data = _load(payload)
        return cls(
            _json.field(data, "at", str),
            _count(data, "pending"),
            _count(data, "dead_letters"),
            _json.optional(data, "oldest_pending_at", str),
        )


@dataclass(frozen=True, slots=True)
class ApplicationsReport:
    """Applications still open, and those past their time limit.

    Attributes:
        at: When it was counted.
        open: Applications not finished.
        overdue: Open applications past their time limit.
        oldest_due: The earliest due date among the overdue ones.
    """

    at: str
    open: int
    overdue: int
    oldest_due: str | None = None

    def to_bytes(self) -> bytes:
        """Encode as JSON."""
        data = {"at": self.at, "open": self.open, "overdue": self.overdue}
        return _dump({**data, "oldest_due": self.oldest_due})

    @classmethod
    def from_bytes(cls, payload: bytes) -> ApplicationsReport:
        """Decode; raises :class:`PayloadError` on anything else."""
        data = _load(payload)
        return cls(
            _json.field(data, "at", str),
            _count(data, "open"),
            _count(data, "overdue"),
            _json.optional(data, "oldest_due", str),
        )


@dataclass(frozen=True, slots=True)
class CertificateEntry:
    """One certificate the daemon presents.

    Attributes:
        subject: Its subject (RFC 4514).
        not_after: End of validity.
        days_left: Days until then (negative once expired).
        expires_soon: Within 30 days of ``not_after``.
    """

    subject: str
    not_after: str
    days_left: float
    expires_soon: bool


@dataclass(frozen=True, slots=True)
class CertificatesReport:
    """Expiry of the certificates the daemon presents (a version-1 report).

    Attributes:
        at: When it was computed.
        certificates: The certificates.
    """

    at: str
    certificates: tuple[CertificateEntry, ...] = ()

    def to_bytes(self) -> bytes:
        """Encode as JSON (version 1: the shape has not changed)."""
        certificates = [
            {
                "subject": c.subject,
                "not_after": c.not_after,
                "days_left": c.days_left,
                "expires_soon": c.expires_soon,
            }
            for c in self.certificates
        ]
        return _json.dump_object({"at": self.at, "certificates": certificates})

    @classmethod
    def from_bytes(cls, payload: bytes) -> CertificatesReport:
        """Decode; raises :class:`PayloadError` on anything else."""
        data = _load(payload)
        entries = tuple(
            CertificateEntry(
                _text(c, "subject"),
                _text(c, "not_after"),
                _days(c),
                _json.field(c, "expires_soon", bool),
            )
            for c in _items(data, "certificates")
        )
        return cls(_json.field(data, "at", str), entries)


Report = (
    QueuesReport
    | ProductionReport
    | StockReport
    | OutboxReport
    | ApplicationsReport
    | CertificatesReport
)

#: Report name (the last topic level) to its codec.
REPORTS: Final[dict[str, type[Report]]] = {
    "queues": QueuesReport,
    "production": ProductionReport,
    "stock": StockReport,
    "outbox": OutboxReport,
    "applications": ApplicationsReport,
    "certificates": CertificatesReport,
}


def decode_report(name: str, payload: bytes) -> Report:
    """Decode the report called ``name``.

    Raises:
        PayloadError: ``name`` is no report, or the payload is not its document.
    """
    codec = REPORTS.get(name)
    if codec is None:
        raise PayloadError("not a report of the schema")
    return codec.from_bytes(payload)

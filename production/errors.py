"""Errors of the production controller.

:class:`ProductionError` is the root. Its families tell the caller what to do:

- :class:`PreconditionError`: the job was refused up front, nothing was
  touched (no encoder configured, no blanks, no station online). Fix the cause
  and submit again.
- :class:`CardFaultError`: one card could not be made (chip write failed three
  times, read-back mismatch); the controller spoils it and takes another blank.
- :class:`JobFailedError`: the job gave up (``reason`` says why).
- :class:`StockError`: a stock operation was refused (e.g. an adjustment
  without a supervisor's approval).
- :class:`UpstreamRefusedError`: the platform or the bank answered and refused
  (not an outage): retrying the same request cannot help, so it is not retried.

Messages never hold personal data; the data a caller needs is in attributes.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ApprovalRequiredError",
    "CardFaultError",
    "ChipWriteError",
    "DeviceOfflineError",
    "JobFailedError",
    "NoBlanksError",
    "NoEncoderError",
    "NoStationError",
    "PreconditionError",
    "ProductionError",
    "StockError",
    "UnknownJobError",
    "UpstreamRefusedError",
    "VerifyMismatchError",
]


class ProductionError(Exception):
    """Root of the production controller errors.

    Attributes:
        code: Stable machine-readable code.
    """

    code: ClassVar[str] = "production.error"


class PreconditionError(ProductionError):
    """A job cannot start; it was refused before any device moved."""

    code: ClassVar[str] = "production.precondition"


class NoStationError(PreconditionError):
    """No station is configured."""

    code: ClassVar[str] = "production.no_station"


class NoEncoderError(PreconditionError):
    """No station has a chip encoder configured (contact encoding comes first)."""

    code: ClassVar[str] = "production.no_encoder"


class DeviceOfflineError(PreconditionError):
    """No station with an encoder has its printer online and not paused.

    Attributes:
        stations: The stations considered, with why each is unusable.
    """

    code: ClassVar[str] = "production.device_offline"

    def __init__(self, stations: dict[str, str]) -> None:
        """Record why each station is unusable."""
        super().__init__(
            "no station is online: " + ", ".join(f"{k}={v}" for k, v in stations.items())
        )
        self.stations = stations


class NoBlanksError(PreconditionError):
    """The feeders of the usable stations hold no blank card (by the stock ledger).

    Attributes:
        feeders: The feeders considered.
    """

    code: ClassVar[str] = "production.no_blanks"

    def __init__(self, feeders: list[str]) -> None:
        """Record the feeders."""
        super().__init__("no blank card in feeders " + ", ".join(feeders))
        self.feeders = feeders


class CardFaultError(ProductionError):
    """One card could not be made; it is spoiled and another blank taken.

    Attributes:
        reason: Stable code put in the spoiled-card ledger.
    """

    code: ClassVar[str] = "production.card_fault"
    reason: str = "card_fault"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        """Record the reason."""
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class ChipWriteError(CardFaultError):
    """The chip refused the personalization on every attempt.

    Attributes:
        attempts: How many write attempts were made.
    """

    code: ClassVar[str] = "production.chip_write"
    reason = "chip_write_failed"

    def __init__(self, attempts: int, last_error: str) -> None:
        """Record the attempts and the last error's code."""
        super().__init__(f"chip write failed {attempts} times (last: {last_error})")
        self.attempts = attempts
        self.last_error = last_error


class VerifyMismatchError(CardFaultError):
    """The records read back differ from those written.

    Attributes:
        fields: The names of the fields that differ (never their values).
    """

    code: ClassVar[str] = "production.verify_mismatch"
    reason = "verify_mismatch"

    def __init__(self, fields: list[str]) -> None:
        """Record the differing field names."""
        super().__init__("read-back differs in " + ", ".join(fields))
        self.fields = fields


class JobFailedError(ProductionError):
    """The job gave up.

    Attributes:
        job_id: The job.
        reason: Stable code.
    """

    code: ClassVar[str] = "production.job_failed"

    def __init__(self, job_id: str, reason: str) -> None:
        """Record the job and the reason."""
        super().__init__(f"job {job_id} failed: {reason}")
        self.job_id = job_id
        self.reason = reason


class UnknownJobError(ProductionError):
    """No such job.

    Attributes:
        job_id: The job asked for.
    """

    code: ClassVar[str] = "production.unknown_job"

    def __init__(self, job_id: str) -> None:
        """Record the job id."""
        super().__init__(f"no job {job_id}")
        self.job_id = job_id


class StockError(ProductionError):
    """A stock operation was refused."""

    code: ClassVar[str] = "production.stock"


class ApprovalRequiredError(StockError):
    """A stock adjustment needs a supervisor's approval (distinct from the operator)."""

    code: ClassVar[str] = "production.approval_required"


class UpstreamRefusedError(ProductionError):
    """The platform or the bank refused a production request (a refusal, not a fault).

    Raised by the adapters of :mod:`production.ports`; the controller stops the job
    with the refusal as its failure instead of retrying.

    Attributes:
        target: ``platform`` or ``bank``.
        status: The other side's status (dialect-neutral, e.g. ``invalid_state``).
    """

    code: ClassVar[str] = "production.upstream_refused"

    def __init__(self, target: str, status: str) -> None:
        """Keep who refused and with which status (no personal data)."""
        super().__init__(f"{target} refused: {status}")
        self.target = target
        self.status = status

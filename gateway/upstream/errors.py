"""Errors of the upstream clients (platform, bank), the outbox and degraded mode.

Families tell the caller what to do:

* :class:`UpstreamConnectionError`, :class:`UpstreamTimeoutError`,
  :class:`UpstreamHttpError` with a 5xx status: transient, retry later (the
  relay does; the circuit breaker counts them);
* :class:`UpstreamProtocolError` (and :class:`EnvelopeRefusedError`): the
  answer cannot be trusted or understood: a configuration or peer problem;
* :class:`UpstreamRejectedError`: the receiver answered and said no (a
  business refusal: wrong state, not found...): do not retry;
* :class:`UpstreamUnavailableError` (and :class:`KeyServiceUnavailableError`):
  degraded mode: the operation cannot be done now; ``message_en`` /
  ``message_zh`` are ready for the teller;
* :class:`LiveOnlyError`: local misuse: a live-only command (PIN, key service)
  was handed to the outbox.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "EnvelopeRefusedError",
    "KeyServiceUnavailableError",
    "LiveOnlyError",
    "OutboxError",
    "UnknownMessageError",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamHttpError",
    "UpstreamProtocolError",
    "UpstreamRejectedError",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
]

_HTTP_SERVER_ERROR: Final = 500


class UpstreamError(Exception):
    """Root of every upstream error.

    Attributes:
        target: ``"platform"`` or ``"bank"`` (or ``"outbox"``).
    """

    def __init__(self, message: str, target: str) -> None:
        """Record the target; messages never hold personal data."""
        super().__init__(message)
        self.target = target


class UpstreamConnectionError(UpstreamError):
    """No connection, or it was lost before the answer (TLS failure, refused, reset)."""


class UpstreamTimeoutError(UpstreamError):
    """No answer within the configured timeout."""


class UpstreamProtocolError(UpstreamError):
    """The answer is not what the protocol allows (status, document, envelope)."""


class UpstreamHttpError(UpstreamProtocolError):
    """An HTTP status other than 200.

    Attributes:
        status: The HTTP status.
    """

    def __init__(self, target: str, status: int) -> None:
        """Record the status."""
        super().__init__(f"{target} answered HTTP {status}", target)
        self.status = status

    @property
    def transient(self) -> bool:
        """True for server errors (5xx), which a retry may cure."""
        return self.status >= _HTTP_SERVER_ERROR


class EnvelopeRefusedError(UpstreamProtocolError):
    """An envelope was refused, by the receiver (``remote``) or by us (``local``).

    Attributes:
        code: The envelope refusal code (``envelope.bad_signature``...).
        side: ``"remote"`` when the receiver refused our envelope, ``"local"``
            when we refused its answer.
    """

    def __init__(self, target: str, code: str, side: str) -> None:
        """Record the code and the side."""
        who = "refused our envelope" if side == "remote" else "answered with an envelope we refused"
        super().__init__(f"{target} {who}: {code}", target)
        self.code = code
        self.side = side


class UpstreamRejectedError(UpstreamError):
    """The receiver refused the request (business answer).

    Attributes:
        operation: The operation refused.
        status: The neutral status (:class:`protocols.platform.Status` value).
        remote_message: The receiver's own text (often Chinese).
    """

    def __init__(self, target: str, operation: str, status: str, remote_message: str) -> None:
        """Record the refusal."""
        super().__init__(f"{target} refused {operation}: {status}", target)
        self.operation = operation
        self.status = status
        self.remote_message = remote_message


class UpstreamUnavailableError(UpstreamError):
    """Degraded mode: the upstream system is down, and this cannot wait.

    Attributes:
        operation: What was asked.
        retry_after: Seconds until the next attempt is allowed (circuit breaker),
            or ``None`` when unknown.
        message_en: Text for the teller, English.
        message_zh: Text for the teller, Chinese.
    """

    message_en = (
        "The provincial platform cannot be reached; this operation needs it live. Try again later."
    )
    message_zh = "省级社保卡平台暂时无法连接，该业务需要实时处理，请稍后再试。"

    def __init__(self, target: str, operation: str, retry_after: float | None = None) -> None:
        """Record the operation and when to try again."""
        super().__init__(f"{target} unavailable for {operation}", target)
        self.operation = operation
        self.retry_after = retry_after


class KeyServiceUnavailableError(UpstreamUnavailableError):
    """The key service (card cryptograms, PIN reset and unlock) cannot be reached.

    These operations are never queued: a PIN command replayed later could
    burn the card's retry counter.
    """

    message_en = (
        "The key service cannot be reached: card writing, PIN reset and unlock are "
        "unavailable until the provincial platform is back. Nothing was queued."
    )
    message_zh = (
        "密钥服务暂时无法连接：写卡、密码重置和解锁暂停办理，待省级平台恢复后再试。本次请求未排队。"
    )


class LiveOnlyError(UpstreamError, TypeError):
    """A live-only command (PIN, key service) was handed to the outbox; nothing was stored."""

    def __init__(self, what: str) -> None:
        """Name what was refused."""
        super().__init__(f"{what} is live-only and never goes through the outbox", "outbox")


class OutboxError(UpstreamError):
    """Root of the outbox's own errors."""


class UnknownMessageError(OutboxError):
    """No dead letter has this message id.

    Attributes:
        message_id: The id asked for.
    """

    def __init__(self, message_id: str) -> None:
        """Record the id."""
        super().__init__(f"no dead letter {message_id!r}", "outbox")
        self.message_id = message_id

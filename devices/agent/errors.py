"""Errors of the MQTT session and the remote device client.

:class:`AgentError` is the root. Callers of a remote printer or encoder never
see these: the remote clients turn them into the device's own errors
(``PrinterConnectionError``, ``PrinterTimeoutError``, ``EncoderConnectionError``,
``EncoderTimeoutError``), so a remote device fails exactly like a local one.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["AgentError", "AgentTimeoutError", "AgentUnreachableError", "BrokerConnectionError"]


class AgentError(Exception):
    """Root of the agent errors.

    Attributes:
        code: Stable machine-readable code.
    """

    code: ClassVar[str] = "agent.error"


class BrokerConnectionError(AgentError):
    """There is no broker session now, or it was lost during the call.

    Attributes:
        reason: Why.
    """

    code: ClassVar[str] = "agent.broker_connection"

    def __init__(self, reason: str) -> None:
        """Record the reason."""
        super().__init__(f"broker: {reason}")
        self.reason = reason


class AgentUnreachableError(AgentError):
    """The agent is offline, or the broker session was lost while waiting for it.

    Attributes:
        agent: The agent's identifier.
        reason: Why.
    """

    code: ClassVar[str] = "agent.unreachable"

    def __init__(self, agent: str, reason: str) -> None:
        """Record the agent and the reason."""
        super().__init__(f"agent {agent}: {reason}")
        self.agent = agent
        self.reason = reason


class AgentTimeoutError(AgentError):
    """The agent did not answer in time.

    Attributes:
        agent: The agent's identifier.
        timeout: The time waited, in seconds.
    """

    code: ClassVar[str] = "agent.timeout"

    def __init__(self, agent: str, timeout: float) -> None:
        """Record the agent and the timeout."""
        super().__init__(f"agent {agent}: no answer within {timeout:.1f} s")
        self.agent = agent
        self.timeout = timeout

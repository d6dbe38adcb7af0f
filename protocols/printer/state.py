"""The host side of the conversation: one command in flight, then its reply.

Theory of operation
-------------------
The printer is half-duplex: it answers every command once, in order, and says
nothing unasked. :class:`PrinterClient` therefore has two states. ``send``
moves IDLE -> AWAITING_REPLY and records the deadline (``now`` plus the
command's timeout from :class:`~protocols.printer.commands.Timeouts`); the
reply that arrives next completes the command (AWAITING_REPLY -> IDLE, a
:class:`Completed` event). A reply while IDLE is :class:`Unsolicited` (a late
answer, or noise that framed as a reply) and changes nothing. ``abandon``
gives the in-flight command up after its deadline: a reply may still come
later and would be taken for the next command's, so the driver closes the
link after abandoning and the next connection starts clean (``reset``).
Skipped bytes surface as :class:`~protocols.printer.decoder.Discarded` events
in any state. Nothing here reads a clock: ``now`` is a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from protocols.printer.commands import Timeouts
from protocols.printer.decoder import Discarded, NeedData, ReplyDecoder
from protocols.printer.errors import PrinterStateError

if TYPE_CHECKING:
    from protocols.printer.frames import Reply, Request

__all__ = ["TRANSITIONS", "ClientState", "Completed", "PrinterClient", "Unsolicited"]


class ClientState(StrEnum):
    """States of :class:`PrinterClient`."""

    IDLE = "idle"
    AWAITING_REPLY = "awaiting_reply"


# (state, input) -> next state; any pair missing here is a PrinterStateError.
TRANSITIONS: dict[tuple[ClientState, str], ClientState] = {
    (ClientState.IDLE, "send"): ClientState.AWAITING_REPLY,
    (ClientState.IDLE, "reply"): ClientState.IDLE,
    (ClientState.IDLE, "reset"): ClientState.IDLE,
    (ClientState.AWAITING_REPLY, "reply"): ClientState.IDLE,
    (ClientState.AWAITING_REPLY, "abandon"): ClientState.IDLE,
    (ClientState.AWAITING_REPLY, "reset"): ClientState.IDLE,
}


@dataclass(frozen=True, slots=True)
class Completed:
    """The in-flight command was answered.

    Attributes:
        request: The command.
        reply: Its reply (an error reply too: see ``reply.error``).
    """

    request: Request
    reply: Reply


@dataclass(frozen=True, slots=True)
class Unsolicited:
    """A reply arrived with no command in flight; it is dropped.

    Attributes:
        reply: What arrived.
    """

    reply: Reply


class PrinterClient:
    """Sans-I/O host connection: bytes to write out, events in, deadlines as numbers."""

    def __init__(self, timeouts: Timeouts | None = None) -> None:
        """Start IDLE with the given per-command timeouts."""
        self.timeouts = timeouts or Timeouts()
        self._decoder = ReplyDecoder()
        self._state = ClientState.IDLE
        self._in_flight: Request | None = None
        self._deadline: float | None = None

    @property
    def state(self) -> ClientState:
        """The current state."""
        return self._state

    @property
    def in_flight(self) -> Request | None:
        """The command awaiting its reply, if any."""
        return self._in_flight

    @property
    def deadline(self) -> float | None:
        """When the in-flight command times out (same clock as ``now``), if any."""
        return self._deadline

    def _move(self, action: str) -> None:
        try:
            self._state = TRANSITIONS[self._state, action]
        except KeyError:
            raise PrinterStateError(f"cannot {action}", self._state.value) from None

    def send(self, request: Request, now: float) -> bytes:
        """Start ``request``; return the bytes to write."""
        data = request.to_bytes()
        self._move("send")
        self._in_flight = request
        self._deadline = now + self.timeouts.for_request(request)
        return data

    def expired(self, now: float) -> bool:
        """Whether the in-flight command is past its deadline at ``now``."""
        return self._deadline is not None and now >= self._deadline

    def abandon(self) -> Request:
        """Give up the in-flight command (its deadline passed); return it."""
        request = self._in_flight
        self._move("abandon")
        self._in_flight, self._deadline = None, None
        assert request is not None  # noqa: S101 (AWAITING_REPLY always has one)
        return request

    def reset(self) -> None:
        """Start afresh on a new link: no command in flight, no partial reply."""
        self._move("reset")
        self._decoder.reset()
        self._in_flight, self._deadline = None, None

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the printer."""
        self._decoder.receive_data(data)

    def next_event(self) -> Completed | Unsolicited | Discarded | NeedData:
        """The next event, or :data:`~protocols.printer.decoder.NEED_DATA`."""
        event = self._decoder.next_event()
        if isinstance(event, (Discarded, NeedData)):
            return event
        request = self._in_flight
        self._move("reply")
        if request is None:
            return Unsolicited(event)
        self._in_flight, self._deadline = None, None
        return Completed(request, event)

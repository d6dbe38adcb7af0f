"""The host side of the conversation: numbered commands, replies matched by SEQ.

Theory of operation
-------------------
The pad answers every request exactly once, echoing its SEQ, and sends key
events (SEQ 0) while the customer types. Most commands are answered at once;
READ_PIN and READ_NEW_PIN (*entries*) are answered when the customer is done,
cancels, or the pad's own timeout passes. While an entry is under way the host
may send one more command, ABORT, which makes the pad answer the entry with
ABORTED and then answer the ABORT itself.

:class:`PinPadClient` keeps the requests in flight by SEQ. Its state is derived
from them: IDLE (none), AWAITING_REPLY (a plain command, or an ABORT whose entry
was already answered), ENTRY (one entry), ABORTING (an entry and its ABORT).
``send`` checks :data:`TRANSITIONS` (anything missing is a
:class:`~protocols.pinpad.errors.PinPadStateError`), numbers the request (1-255,
wrapping, never a SEQ in flight) and returns the frame to write. A reply with a
SEQ in flight completes that request (:class:`Completed`); any other reply
(a late answer to an abandoned request, or a SEQ/command mix-up) is
:class:`Unsolicited` and changes nothing. Because replies are matched by SEQ, a
request the host gave up on (``abandon``) needs no link reset: its late reply
is recognised and dropped. Nothing here reads a clock: the driver keeps the
timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from protocols.pinpad.decoder import Discarded, NeedData, PadMessageDecoder
from protocols.pinpad.errors import PinPadStateError
from protocols.pinpad.frames import MAX_SEQ, Command, KeyEvent, Reply, Request

if TYPE_CHECKING:
    from protocols.pinpad.commands import Call

__all__ = ["TRANSITIONS", "ClientState", "Completed", "PinPadClient", "Unsolicited"]


class ClientState(StrEnum):
    """States of :class:`PinPadClient` (derived from the requests in flight)."""

    IDLE = "idle"
    AWAITING_REPLY = "awaiting_reply"
    ENTRY = "entry"
    ABORTING = "aborting"


# (state, kind of request sent) -> next state; any pair missing is a PinPadStateError.
# Kinds: "command" (INFO, LOAD_KEY, SHOW), "entry" (READ_PIN, READ_NEW_PIN), "abort".
TRANSITIONS: Final[dict[tuple[ClientState, str], ClientState]] = {
    (ClientState.IDLE, "command"): ClientState.AWAITING_REPLY,
    (ClientState.IDLE, "entry"): ClientState.ENTRY,
    (ClientState.IDLE, "abort"): ClientState.AWAITING_REPLY,
    (ClientState.ENTRY, "abort"): ClientState.ABORTING,
}


def _kind(command: Command) -> str:
    if command is Command.ABORT:
        return "abort"
    return "entry" if command.is_entry else "command"


@dataclass(frozen=True, slots=True)
class Completed:
    """A request in flight was answered.

    Attributes:
        request: The request.
        reply: Its reply (any status).
    """

    request: Request
    reply: Reply


@dataclass(frozen=True, slots=True)
class Unsolicited:
    """A reply matched no request in flight; it is dropped.

    Attributes:
        reply: What arrived.
    """

    reply: Reply


class PinPadClient:
    """Sans-I/O host connection: bytes to write out, events in."""

    def __init__(self) -> None:
        """Start IDLE with nothing in flight."""
        self._decoder = PadMessageDecoder()
        self._in_flight: dict[int, Request] = {}
        self._next_seq = 1

    @property
    def state(self) -> ClientState:
        """The current state."""
        commands = [r.command for r in self._in_flight.values()]
        if not commands:
            return ClientState.IDLE
        if any(c.is_entry for c in commands):
            return ClientState.ABORTING if Command.ABORT in commands else ClientState.ENTRY
        return ClientState.AWAITING_REPLY

    @property
    def in_flight(self) -> tuple[Request, ...]:
        """The requests awaiting their replies, oldest first."""
        return tuple(self._in_flight.values())

    def send(self, call: Call) -> Request:
        """Number ``call`` and start it; write ``request.to_bytes()`` next.

        Raises:
            PinPadStateError: The pad cannot take this command now.
            PinPadEncodeError: The call cannot be framed.
        """
        state = self.state
        if (state, _kind(call.command)) not in TRANSITIONS:
            raise PinPadStateError(f"cannot send {call.command.label}", state.value)
        request = Request(self._take_seq(), call.command, call.data)
        request.to_bytes()  # refuse an unframeable request before it counts as sent
        self._in_flight[request.seq] = request
        return request

    def _take_seq(self) -> int:
        seq = self._next_seq
        while seq in self._in_flight:  # at most two in flight: this ends at once
            seq = seq % MAX_SEQ + 1
        self._next_seq = seq % MAX_SEQ + 1
        return seq

    def abandon(self, seq: int) -> Request | None:
        """Give up waiting for request ``seq``; its late reply will be :class:`Unsolicited`."""
        return self._in_flight.pop(seq, None)

    def reset(self) -> None:
        """Start afresh on a new link: nothing in flight, no partial frame."""
        self._decoder.reset()
        self._in_flight.clear()

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the pad."""
        self._decoder.receive_data(data)

    def next_event(self) -> Completed | Unsolicited | KeyEvent | Discarded | NeedData:
        """The next event, or :data:`~protocols.pinpad.decoder.NEED_DATA`."""
        event = self._decoder.next_event()
        if not isinstance(event, Reply):
            return event
        request = self._in_flight.get(event.seq)
        if request is None or request.command is not event.command:
            return Unsolicited(event)
        del self._in_flight[event.seq]
        return Completed(request, event)

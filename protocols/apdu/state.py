"""The T=0 answer-chaining state machine: ``61xx`` (GET RESPONSE) and ``6Cxx`` (resend).

Theory of operation
-------------------

Under T=0 a card cannot send answer data in the same exchange as command data,
and it may refuse an Le that does not match what it has. It says so with two
procedure-like status words (ISO/IEC 7816-4, 5.1.3 and 7816-3, 12.2.4):

* ``61xx``: "xx more bytes are ready" (``00`` = 256 or more). The terminal
  sends GET RESPONSE ``00 C0 00 00 xx`` and keeps any data already received.
* ``6Cxx``: "wrong Le, the right one is xx". The terminal sends the *same*
  command again with ``Le = xx`` (``00`` = 256).

Anything else ends the exchange: the final response is the data gathered so
far followed by the data and status word of the last answer.

:class:`T0Exchange` is sans-I/O: :meth:`T0Exchange.start` gives the first
command to send, and :meth:`T0Exchange.receive` takes each answer and returns
either the next command to send or the final :class:`ResponseApdu`. A driver
loops::

    exchange = T0Exchange(command)
    step = exchange.start()
    while isinstance(step, CommandApdu):
        step = exchange.receive(ResponseApdu.from_bytes(transmit(step.to_bytes())))

The whole behaviour is the table :data:`TRANSITIONS`: (state, kind of status
word) -> (action, next state). The number of rounds is bounded so a card that
answers ``61xx`` forever cannot hold the terminal.
"""

from __future__ import annotations

import enum
from typing import Final

from protocols.apdu.errors import ExchangeError
from protocols.apdu.frames import MAX_EXTENDED_LE, MAX_SHORT_LE, CommandApdu, ResponseApdu

__all__ = [
    "DEFAULT_MAX_ROUNDS",
    "GET_RESPONSE_INS",
    "TRANSITIONS",
    "Action",
    "AnswerKind",
    "ExchangeState",
    "T0Exchange",
    "classify",
    "get_response",
]

#: INS of GET RESPONSE (ISO/IEC 7816-4, 11.5.3).
GET_RESPONSE_INS: Final = 0xC0
#: Answers accepted in one exchange before giving up (1 command + 31 follow-ups).
DEFAULT_MAX_ROUNDS: Final = 32
_SW1_MORE: Final = 0x61
_SW1_WRONG_LE: Final = 0x6C


class ExchangeState(enum.Enum):
    """Where the exchange stands."""

    #: The original command (or its resend) is out; waiting for its answer.
    COMMAND_SENT = "command_sent"
    #: A GET RESPONSE (or its resend) is out; waiting for its answer.
    GET_RESPONSE_SENT = "get_response_sent"
    #: The final response has been returned.
    DONE = "done"


class AnswerKind(enum.Enum):
    """How an answer's status word steers the exchange."""

    MORE = "61xx"
    WRONG_LE = "6Cxx"
    FINAL = "final"


class Action(enum.Enum):
    """What the exchange does with an answer."""

    #: Keep the answer's data; send GET RESPONSE with Le = xx.
    GET_RESPONSE = "get_response"
    #: Send the last command again with Le = xx.
    RESEND = "resend"
    #: Return gathered data + the answer.
    FINISH = "finish"


#: The state machine, whole: (state, answer kind) -> (action, next state).
TRANSITIONS: Final[dict[tuple[ExchangeState, AnswerKind], tuple[Action, ExchangeState]]] = {
    (ExchangeState.COMMAND_SENT, AnswerKind.MORE): (
        Action.GET_RESPONSE,
        ExchangeState.GET_RESPONSE_SENT,
    ),
    (ExchangeState.COMMAND_SENT, AnswerKind.WRONG_LE): (Action.RESEND, ExchangeState.COMMAND_SENT),
    (ExchangeState.COMMAND_SENT, AnswerKind.FINAL): (Action.FINISH, ExchangeState.DONE),
    (ExchangeState.GET_RESPONSE_SENT, AnswerKind.MORE): (
        Action.GET_RESPONSE,
        ExchangeState.GET_RESPONSE_SENT,
    ),
    (ExchangeState.GET_RESPONSE_SENT, AnswerKind.WRONG_LE): (
        Action.RESEND,
        ExchangeState.GET_RESPONSE_SENT,
    ),
    (ExchangeState.GET_RESPONSE_SENT, AnswerKind.FINAL): (Action.FINISH, ExchangeState.DONE),
}


def classify(response: ResponseApdu) -> AnswerKind:
    """Say whether an answer asks for GET RESPONSE, for a resend, or ends the exchange."""
    if response.sw1 == _SW1_MORE:
        return AnswerKind.MORE
    if response.sw1 == _SW1_WRONG_LE:
        return AnswerKind.WRONG_LE
    return AnswerKind.FINAL


def get_response(length: int, cla: int = 0x00) -> CommandApdu:
    """GET RESPONSE ``CLA C0 00 00 Le`` for ``length`` bytes (1..256)."""
    return CommandApdu(cla, GET_RESPONSE_INS, 0x00, 0x00, le=length)


class T0Exchange:
    """One command's exchange with ``61xx``/``6Cxx`` handling (see the module docstring)."""

    def __init__(self, command: CommandApdu, *, max_rounds: int = DEFAULT_MAX_ROUNDS) -> None:
        """Prepare the exchange of ``command``; at most ``max_rounds`` answers are taken."""
        self.command = command
        self.max_rounds = max_rounds
        self.state = ExchangeState.COMMAND_SENT
        self.rounds = 0
        self._last = command
        self._gathered = bytearray()

    def start(self) -> CommandApdu:
        """The first command to send: the original one."""
        return self.command

    def receive(self, response: ResponseApdu) -> CommandApdu | ResponseApdu:
        """Take one answer; return the next command to send or the final response.

        Raises:
            ExchangeError: The exchange is already done, the card went past
                ``max_rounds`` answers, or the gathered data grew past 65,536 bytes.
        """
        if self.state is ExchangeState.DONE:
            raise ExchangeError("already_done")
        self.rounds += 1
        action, next_state = TRANSITIONS[self.state, classify(response)]
        if action is Action.FINISH:
            self.state = next_state
            data = bytes(self._gathered) + response.data
            if len(data) > MAX_EXTENDED_LE:
                raise ExchangeError("answer_too_long")
            return ResponseApdu(data, response.sw)
        if self.rounds >= self.max_rounds:
            self.state = ExchangeState.DONE
            raise ExchangeError("too_many_rounds")
        length = response.sw2 or MAX_SHORT_LE
        if action is Action.GET_RESPONSE:
            self._gathered += response.data
            if len(self._gathered) > MAX_EXTENDED_LE:
                self.state = ExchangeState.DONE
                raise ExchangeError("answer_too_long")
            self._last = get_response(length)
        else:
            self._last = self._last.with_le(length)
        self.state = next_state
        return self._last

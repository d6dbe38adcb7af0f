"""The T=0 ``61xx``/``6Cxx`` state machine, exhaustively over state x status word."""

from __future__ import annotations

import itertools

import pytest

from protocols.apdu import (
    TRANSITIONS,
    Action,
    AnswerKind,
    CommandApdu,
    ExchangeError,
    ExchangeState,
    ResponseApdu,
    T0Exchange,
    classify,
    get_response,
)

SELECT = CommandApdu(0x00, 0xA4, 0x04, 0x00, b"sx1")
READ = CommandApdu(0x00, 0xB2, 0x01, 0x2C, le=256)


def _in_state(state: ExchangeState, command: CommandApdu = SELECT) -> T0Exchange:
    exchange = T0Exchange(command)
    exchange.start()
    if state is ExchangeState.GET_RESPONSE_SENT:
        exchange.receive(ResponseApdu(b"AB", 0x6110))
    elif state is ExchangeState.DONE:
        exchange.receive(ResponseApdu(b"", 0x9000))
    assert exchange.state is state
    return exchange


def test_table_is_complete() -> None:
    """Every live state has a transition for every kind of answer."""
    live = [s for s in ExchangeState if s is not ExchangeState.DONE]
    assert set(TRANSITIONS) == set(itertools.product(live, AnswerKind))


@pytest.mark.parametrize("state", [ExchangeState.COMMAND_SENT, ExchangeState.GET_RESPONSE_SENT])
def test_every_status_word_in_every_state(state: ExchangeState) -> None:
    """For all 65,536 status words, the machine does what its table says."""
    for sw in range(0x10000):
        exchange = _in_state(state)
        last = SELECT if state is ExchangeState.COMMAND_SENT else get_response(0x10)
        answer = ResponseApdu(b"\x01", sw)
        action, next_state = TRANSITIONS[state, classify(answer)]
        step = exchange.receive(answer)
        assert exchange.state is next_state
        length = (sw & 0xFF) or 256
        if action is Action.FINISH:
            gathered = b"AB" if state is ExchangeState.GET_RESPONSE_SENT else b""
            assert step == ResponseApdu(gathered + b"\x01", sw)
        elif action is Action.GET_RESPONSE:
            assert step == get_response(length)
        else:
            assert step == last.with_le(length)


def test_done_refuses_more() -> None:
    """Feeding a finished exchange is local misuse."""
    exchange = _in_state(ExchangeState.DONE)
    with pytest.raises(ExchangeError) as info:
        exchange.receive(ResponseApdu(b"", 0x9000))
    assert info.value.reason == "already_done"


def test_select_then_get_response() -> None:
    """SELECT answered 6112 is followed by GET RESPONSE 00 C0 00 00 12."""
    exchange = T0Exchange(SELECT)
    assert exchange.start() == SELECT
    step = exchange.receive(ResponseApdu(b"", 0x6112))
    assert isinstance(step, CommandApdu)
    assert step.to_bytes().hex().upper() == "00C0000012"
    final = exchange.receive(ResponseApdu(bytes(18), 0x9000))
    assert final == ResponseApdu(bytes(18), 0x9000)


def test_read_record_resent_with_right_le() -> None:
    """READ RECORD with Le 00 answered 6C12 is resent with Le 12."""
    exchange = T0Exchange(READ)
    step = exchange.receive(ResponseApdu(b"", 0x6C12))
    assert isinstance(step, CommandApdu)
    assert step.to_bytes().hex().upper() == "00B2012C12"
    assert exchange.receive(ResponseApdu(b"x" * 18, 0x9000)).data == b"x" * 18


def test_chained_get_responses_gather_data() -> None:
    """Data from successive 61xx answers is concatenated in order."""
    exchange = T0Exchange(SELECT)
    exchange.receive(ResponseApdu(b"", 0x6100))
    exchange.receive(ResponseApdu(b"a" * 256, 0x6102))
    final = exchange.receive(ResponseApdu(b"bc", 0x9000))
    assert final == ResponseApdu(b"a" * 256 + b"bc", 0x9000)


def test_endless_chaining_is_cut() -> None:
    """A card that answers 61xx forever stops the exchange after max_rounds."""
    exchange = T0Exchange(SELECT, max_rounds=4)
    for _ in range(3):
        assert isinstance(exchange.receive(ResponseApdu(b"", 0x6101)), CommandApdu)
    with pytest.raises(ExchangeError) as info:
        exchange.receive(ResponseApdu(b"", 0x6101))
    assert info.value.reason == "too_many_rounds"
    assert exchange.state is ExchangeState.DONE


def test_too_much_data_is_refused() -> None:
    """Gathered data past 65,536 bytes ends the exchange."""
    exchange = T0Exchange(SELECT, max_rounds=1000)
    for _ in range(256):
        exchange.receive(ResponseApdu(bytes(256), 0x6100))
    with pytest.raises(ExchangeError) as info:
        exchange.receive(ResponseApdu(bytes(256), 0x6100))
    assert info.value.reason == "answer_too_long"

"""The sans-I/O topic scheme and payloads: golden forms, round trips, fuzz."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.mqtt import (
    BranchTopics,
    CertificatesReport,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    FeederLevel,
    Levels,
    MqttProtocolError,
    Presence,
    PresenceState,
    RpcError,
    RpcRequest,
    RpcResponse,
    TopicError,
    parse_topic,
    rpc,
)
from protocols.printer.commands import CardPosition, PrinterStatus, read_ribbon_remaining
from protocols.printer.frames import Ack, Depth, Nack, Panel, TextReply, panel_size

TOPICS = BranchTopics("650000", "T-652300-01")


def test_topic_scheme_golden() -> None:
    """Every topic of the scheme, spelled out, and parsed back."""
    assert TOPICS.daemon_state() == "sscard/v1/650000/T-652300-01/daemon/state"
    assert TOPICS.device_state("p1") == "sscard/v1/650000/T-652300-01/devices/p1/state"
    assert TOPICS.agent_state("a1") == "sscard/v1/650000/T-652300-01/agents/a1/state"
    assert (
        TOPICS.agent_request("a1", "p1")
        == "sscard/v1/650000/T-652300-01/agents/a1/devices/p1/request"
    )
    parsed = parse_topic(TOPICS.agent_device_state("a1", "p1"))
    assert (parsed.kind, parsed.agent, parsed.device) == ("agent_device_state", "a1", "p1")
    assert parse_topic(TOPICS.client_response("d1")).client == "d1"


@pytest.mark.parametrize("name", ["", "a/b", "+", "#", "x" * 65, "名字", ".", "..", "..."])
def test_bad_segments_are_refused(name: str) -> None:
    """Names that could add a level or a wildcard, or that a URL path resolves away."""
    with pytest.raises(TopicError):
        TOPICS.device_state(name)


def test_a_segment_may_hold_dots_among_other_characters() -> None:
    """Only a segment of dots alone is refused."""
    assert TOPICS.device_state("printer.1").endswith("/printer.1/state")


def test_presence_golden() -> None:
    """The Will payload, byte for byte."""
    will = PresenceState(Presence.OFFLINE, "connection_lost")
    assert will.to_bytes() == b'{"v":1,"state":"offline","reason":"connection_lost","at":null}'
    assert PresenceState.from_bytes(will.to_bytes()) == will


def test_device_state_round_trip() -> None:
    """A device state survives encoding."""
    state = DeviceState(
        "printer-1",
        DeviceKind.PRINTER,
        DeviceStatus.ERROR,
        "printer.jam",
        "2026-11-23T09:00:00.000Z",
        Levels(FeederLevel.NEAR_EMPTY, "YMCKO", 12, reject_box_full=False, cover_open=False),
        {"commands": 3, "errors": 1},
    )
    assert DeviceState.from_bytes(state.to_bytes()) == state


def test_rpc_round_trips() -> None:
    """Requests, results, errors, printer replies, panels and statuses survive encoding."""
    request = RpcRequest("printer.command", rpc.request_to_json(read_ribbon_remaining()))
    decoded = RpcRequest.from_bytes(request.to_bytes())
    assert rpc.request_from_json(decoded.args) == read_ribbon_remaining()
    failure = RpcResponse(error=RpcError("printer.jam", {"printer_code": "T", "command": "Sis"}))
    assert RpcResponse.from_bytes(failure.to_bytes()) == failure
    for reply in (TextReply("OK"), Ack(), Nack("T")):
        assert rpc.reply_from_json(rpc.reply_to_json(reply)) == reply
    panels = [(Panel.BLACK, Depth.LEVELS_2, bytes(panel_size(Depth.LEVELS_2)))]
    assert rpc.panels_from_json({"panels": rpc.panels_to_json(panels)}) == panels
    status = PrinterStatus(
        feeder_loaded=True,
        feeder_near_empty=False,
        cover_open=False,
        card_at_output=False,
        reject_box_full=False,
        card_position=CardPosition.CONTACT,
        ribbon_type=None,
        ribbon_remaining=None,
    )
    assert rpc.status_from_json(rpc.status_to_json(status)) == status


@pytest.mark.parametrize(
    "payload",
    [b"", b"[]", b'{"v":2,"op":"printer.status"}', b'{"v":1,"op":"shell"}', b"\xff", b"NaN"],
)
def test_bad_requests_are_payload_errors(payload: bytes) -> None:
    """Wrong versions, unknown operations and non-JSON are refused."""
    with pytest.raises(MqttProtocolError):
        RpcRequest.from_bytes(payload)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.binary(max_size=200) | _JSON.map(lambda v: repr(v).encode()))
def test_decoders_raise_only_their_error(payload: bytes) -> None:
    """On any bytes every decoder returns a value or raises MqttProtocolError."""
    for decode in (
        PresenceState.from_bytes,
        DeviceState.from_bytes,
        RpcRequest.from_bytes,
        RpcResponse.from_bytes,
    ):
        with contextlib.suppress(MqttProtocolError):
            decode(payload)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "v",
                "device",
                "kind",
                "state",
                "since",
                "levels",
                "counters",
                "reason",
                "op",
                "args",
                "ok",
                "result",
                "error",
                "at",
            ]
        ),
        _JSON,
    )
)
def test_structured_garbage_raises_only_their_error(data: dict[str, object]) -> None:
    """JSON objects with the right keys and wrong values raise only MqttProtocolError."""
    payload = json.dumps({"v": 1, **data}, default=str).encode()
    for decode in (PresenceState.from_bytes, DeviceState.from_bytes, RpcResponse.from_bytes):
        with contextlib.suppress(MqttProtocolError):
            decode(payload)
    args = data.get("args")
    if isinstance(args, dict):
        for parse in (
            rpc.request_from_json,
            rpc.reply_from_json,
            rpc.status_from_json,
            rpc.panels_from_json,
            rpc.station_from_json,
        ):
            with contextlib.suppress(MqttProtocolError):
                parse(args)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v":1,"state":"offline","reason":"\\ud800"}',
        b'{"v":1,"state":"offline","reason":"\\udfff\\ud800"}',
        b'{"v":1,"state":"offline","\\udc80":1}',
        b'{"v":1,"state":"offline","reason":"\xed\xa0\x80"}',
        b'{"v":1,"state":"offline","x":1e400}',
    ],
)
def test_payloads_that_would_not_encode_again_are_refused(payload: bytes) -> None:
    """Lone surrogates and numbers beyond a float are refused; an escaped pair is not."""
    with pytest.raises(MqttProtocolError):
        PresenceState.from_bytes(payload)
    emoji = PresenceState.from_bytes(b'{"v":1,"state":"offline","reason":"\\ud83d\\ude00"}')
    assert emoji.reason == "\U0001f600"


def test_certificate_days_beyond_a_float_are_refused() -> None:
    """An integer of 400 digits is JSON, but no number of days."""
    entry = {"subject": "CN=x", "not_after": "2027-01-01", "expires_soon": False}
    payload = json.dumps(
        {"v": 1, "at": "now", "certificates": [{**entry, "days_left": 10**400}]}
    ).encode()
    with pytest.raises(MqttProtocolError):
        CertificatesReport.from_bytes(payload)


def test_panel_of_the_wrong_size_is_refused() -> None:
    """A print_card bitmap must be one whole panel, or the Db request could not be framed."""
    short = [(Panel.BLACK, Depth.LEVELS_2, bytes(10))]
    with pytest.raises(MqttProtocolError):
        rpc.panels_from_json({"panels": rpc.panels_to_json(short)})

"""Envelope codec: round trips, exact limits, and "only EnvelopeError" on any input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.envelope import (
    MAX_BODY_SIZE,
    Envelope,
    EnvelopeEncodeError,
    EnvelopeError,
    EnvelopeHeader,
    MalformedEnvelopeError,
    TruncatedEnvelopeError,
)

TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64
)
HEADERS = st.builds(
    EnvelopeHeader,
    sender=TEXT,
    receiver=TEXT,
    message_id=TEXT,
    timestamp_ms=st.integers(0, 2**64 - 1),
    nonce=st.binary(min_size=12, max_size=12),
    suite=st.sampled_from(["gm", "intl"]),
    key_id=TEXT,
    key_version=st.integers(0, 2**32 - 1),
    repeat=st.booleans(),
)
ENVELOPES = st.builds(
    Envelope,
    header=HEADERS,
    body=st.binary(min_size=16, max_size=200),
    signature=st.binary(min_size=64, max_size=64),
)


def _valid() -> Envelope:
    header = EnvelopeHeader(
        sender="S",
        receiver="R",
        message_id="M",
        timestamp_ms=1,
        nonce=bytes(12),
        suite="gm",
        key_id="K",
        key_version=1,
    )
    return Envelope(header=header, body=bytes(16), signature=bytes(64))


@given(ENVELOPES)
def test_round_trip(envelope: Envelope) -> None:
    """Every valid envelope decodes to itself."""
    assert Envelope.from_bytes(envelope.to_bytes()) == envelope


@given(ENVELOPES)
def test_every_strict_prefix_is_truncated(envelope: Envelope) -> None:
    """Every strict prefix of a valid envelope is refused as truncated."""
    data = envelope.to_bytes()
    for end in range(len(data)):
        with pytest.raises(TruncatedEnvelopeError) as info:
            Envelope.from_bytes(data[:end])
        assert info.value.code == "envelope.truncated"
        assert info.value.available == end
        assert info.value.needed > end


@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_envelope_errors(data: bytes) -> None:
    """Arbitrary bytes either decode or raise an EnvelopeError, nothing else."""
    error: EnvelopeError | None = None
    try:
        envelope = Envelope.from_bytes(data)
    except EnvelopeError as exc:
        error = exc
    if error is None:
        assert envelope.to_bytes() == data
    else:
        assert error.code.startswith("envelope.")


@given(
    ENVELOPES,
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
    st.binary(max_size=8),
    st.integers(0, 10_000),
)
def test_mutated_envelopes_raise_only_envelope_errors(
    envelope: Envelope, flips: list[tuple[int, int]], insert: bytes, cut: int
) -> None:
    """Byte flips, insertions and cuts of a valid envelope raise only EnvelopeError."""
    data = bytearray(envelope.to_bytes())
    for position, value in flips:
        data[position % len(data)] = value
    position = cut % (len(data) + 1)
    variants = [
        bytes(data),
        bytes(data[:position] + insert + data[position:]),
        bytes(data[:position]),
    ]
    for variant in variants:
        try:
            decoded = Envelope.from_bytes(variant)
        except EnvelopeError:
            continue
        assert decoded.to_bytes() == variant


def test_decoder_accepts_bytearray_and_memoryview() -> None:
    """Any bytes-like input decodes the same."""
    data = _valid().to_bytes()
    assert Envelope.from_bytes(bytearray(data)) == Envelope.from_bytes(memoryview(data)) == _valid()


@pytest.mark.parametrize(
    ("position", "value", "field"),
    [
        (0, 0x58, "magic"),
        (4, 0x02, "flags"),
        (29, 0x00, "sender"),
        (29, 0x41, "sender"),
        (30, 0x20, "sender"),
        (30, 0x80, "sender"),
    ],
    ids=["magic", "reserved-flag", "empty-text", "long-text", "space", "non-ascii"],
)
def test_malformed_fields_name_the_field(position: int, value: int, field: str) -> None:
    """A bad magic, flag or text field is envelope.malformed naming the field."""
    data = bytearray(_valid().to_bytes())
    data[position] = value
    with pytest.raises(MalformedEnvelopeError) as info:
        Envelope.from_bytes(bytes(data))
    assert info.value.field == field
    assert info.value.code == "envelope.malformed"


def test_body_length_limits() -> None:
    """Body lengths below the tag size or above the maximum are malformed."""
    data = _valid().to_bytes()
    offset = len(_valid().header.to_bytes())
    for length in (15, MAX_BODY_SIZE + 1):
        bad = data[:offset] + length.to_bytes(4, "big") + data[offset + 4 :]
        with pytest.raises(MalformedEnvelopeError) as info:
            Envelope.from_bytes(bad)
        assert info.value.field == "body_length"


def test_signature_length_must_be_64() -> None:
    """A signature length byte other than 64 is malformed."""
    data = _valid().to_bytes()
    bad = data[:-65] + b"\x3f" + data[-64:-1]
    with pytest.raises(MalformedEnvelopeError) as info:
        Envelope.from_bytes(bad)
    assert info.value.field == "signature_length"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sender": ""}, "sender"),
        ({"receiver": "x" * 65}, "receiver"),
        ({"message_id": "有"}, "message_id"),
        ({"key_id": "a b"}, "key_id"),
        ({"timestamp_ms": -1}, "timestamp_ms"),
        ({"timestamp_ms": 2**64}, "timestamp_ms"),
        ({"nonce": bytes(11)}, "nonce"),
        ({"suite": "rsa"}, "suite"),
        ({"key_version": 2**32}, "key_version"),
    ],
)
def test_encoder_refuses_out_of_range_fields(changes: dict[str, object], field: str) -> None:
    """Building a header with an out-of-range field is EnvelopeEncodeError naming it."""
    fields: dict[str, object] = {
        "sender": "S",
        "receiver": "R",
        "message_id": "M",
        "timestamp_ms": 0,
        "nonce": bytes(12),
        "suite": "gm",
        "key_id": "K",
        "key_version": 0,
    }
    fields.update(changes)
    with pytest.raises(EnvelopeEncodeError) as info:
        EnvelopeHeader(**fields)  # type: ignore[arg-type]
    assert info.value.field == field
    assert info.value.code == "envelope.invalid_field"


@pytest.mark.parametrize(
    ("body", "signature", "field"),
    [(bytes(15), bytes(64), "body"), (bytes(16), bytes(63), "signature")],
)
def test_encoder_refuses_bad_body_or_signature(body: bytes, signature: bytes, field: str) -> None:
    """A body shorter than a tag or a signature not 64 bytes is EnvelopeEncodeError."""
    with pytest.raises(EnvelopeEncodeError) as info:
        Envelope(header=_valid().header, body=body, signature=signature)
    assert info.value.field == field

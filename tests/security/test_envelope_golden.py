"""Golden envelope vectors: the bytes in docs/protocols/envelope.md, decoded and opened."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest

from protocols.envelope import Envelope, EnvelopeHeader
from security.envelope import DictEnvelopeKeys, EnvelopeOpener, SenderIdentity, seal
from security.suites import GM, INTL, CryptoSuite

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocols" / "envelope.md"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
BODY = b'{"op":"ping"}'
HEADER_HEX = (
    "5345010{suite}0{flag}000001a20621ad00000102030405060708090a0b000000030b3434303130302d"
    "423030310b504c4154464f524d2d3434114d2d32303236313132332d3030303030310a6272616e63682d"
    "736967"
)


class Golden(NamedTuple):
    """One golden vector: suite, keys and the envelope bytes."""

    suite: CryptoSuite
    private: str
    aead_key: bytes
    repeat: bool
    envelope: str


GOLDEN = [
    Golden(
        suite=GM,
        private="3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8",
        aead_key=bytes.fromhex("0123456789abcdeffedcba9876543210"),
        repeat=False,
        envelope=HEADER_HEX.format(suite=1, flag=0)
        + "0000001d2e0377e1938b8b6f0deee489a65d7a495c10b89c5d84673ca1312efb5e"
        "40528e693482c5dba2117fcf9c7b28487c63f2564af8f7c2181e8dc8c262edb801"
        "97e48256d9494b0fa0f3b15f1d668f3c217ef72901d51cc2ef1e6c995a1a7e68",
    ),
    Golden(
        suite=INTL,
        private="c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721",
        aead_key=bytes(range(32)),
        repeat=True,
        envelope=HEADER_HEX.format(suite=2, flag=1)
        + "0000001d3c20b96be7dfe06be42ff0a9ccc94318a27526c10ded35cbf95ee0937c"
        "401c9f4722183f6bceaac59b46dc76679642dbe5872e685d07dc5ebc5bfb04d206"
        "d8348d51f611c36b00a93cb486a6c573b9bb0e82e703624870fef593272ea90b",
    ),
]
BY_SUITE = pytest.mark.parametrize("golden", GOLDEN, ids=[g.suite.name for g in GOLDEN])


def _header(golden: Golden) -> EnvelopeHeader:
    return EnvelopeHeader(
        sender="440100-B001",
        receiver="PLATFORM-44",
        message_id="M-20261123-000001",
        timestamp_ms=1_795_399_200_000,
        nonce=bytes(range(12)),
        suite=golden.suite.name,
        key_id="branch-sig",
        key_version=3,
        repeat=golden.repeat,
    )


def _identity(golden: Golden) -> SenderIdentity:
    return SenderIdentity(
        sender="440100-B001",
        key_id="branch-sig",
        key_version=3,
        signing_key=golden.suite.load_signing_key(bytes.fromhex(golden.private)),
        aead_key=golden.aead_key,
    )


@BY_SUITE
def test_golden_vector_is_in_the_specification(golden: Golden) -> None:
    """The vector printed in docs/protocols/envelope.md is exactly the one tested."""
    compact = re.sub(r"\s+", "", DOC.read_text(encoding="utf-8"))
    assert golden.envelope in compact


@BY_SUITE
def test_golden_vector_decodes_to_its_fields(golden: Golden) -> None:
    """Decoding gives the documented header, and re-encoding gives the same bytes."""
    data = bytes.fromhex(golden.envelope)
    envelope = Envelope.from_bytes(data)
    assert envelope.header == _header(golden)
    assert len(envelope.body) == len(BODY) + 16
    assert envelope.to_bytes() == data


@BY_SUITE
def test_golden_header_encoding_is_exact(golden: Golden) -> None:
    """Encoding the documented header fields gives the documented header bytes."""
    header_hex = HEADER_HEX.format(suite=1 if golden.suite is GM else 2, flag=int(golden.repeat))
    assert _header(golden).to_bytes().hex() == header_hex


@BY_SUITE
def test_golden_vector_opens(golden: Golden) -> None:
    """The golden envelope opens with the documented keys at its timestamp."""
    keys = DictEnvelopeKeys()
    keys.add(_identity(golden))
    opened = EnvelopeOpener("PLATFORM-44", keys).open(bytes.fromhex(golden.envelope), NOW)
    assert opened.body == BODY
    assert opened.header == _header(golden)


@BY_SUITE
def test_sealing_reproduces_everything_but_the_signature(golden: Golden) -> None:
    """Sealing the same input again matches up to the (randomized) signature."""
    identity = _identity(golden)
    data = seal(_header(golden), BODY, signing_key=identity.signing_key, aead_key=golden.aead_key)
    expected = bytes.fromhex(golden.envelope)
    assert data[:-64] == expected[:-64]
    assert data[-64:] != expected[-64:]

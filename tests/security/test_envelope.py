"""Sealing and opening envelopes: round trips, every refusal code, rotation, replay cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from prometheus_client import generate_latest

from protocols.envelope import Envelope, EnvelopeHeader
from security.envelope import (
    DEFAULT_WINDOW,
    BadSignatureError,
    DecryptionFailedError,
    DictEnvelopeKeys,
    EnvelopeFormatError,
    EnvelopeOpener,
    EnvelopeRejectedError,
    EnvelopeSealer,
    ReplayCache,
    ReplayedNonceError,
    ReplayUnverifiableError,
    SenderIdentity,
    SuiteNotAcceptedError,
    TimestampOutOfWindowError,
    UnknownKeyError,
    WrongReceiverError,
    seal,
    to_epoch_ms,
)
from security.errors import SecurityError
from security.suites import GM, INTL, CryptoSuite, SuiteMismatchError

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
ALL_SUITES = pytest.mark.parametrize("suite", [GM, INTL], ids=["gm", "intl"])


def _identity(suite: CryptoSuite, version: int = 1, sender: str = "440100-B001") -> SenderIdentity:
    return SenderIdentity(
        sender=sender,
        key_id="branch-sig",
        key_version=version,
        signing_key=suite.generate_signing_key(),
        aead_key=bytes([version]) * suite.aead_key_size,
    )


class Pair:
    """A sender and a receiver that trusts it."""

    def __init__(self, suite: CryptoSuite) -> None:
        """Make one identity, trust it, and open as PLATFORM-44."""
        self.identity = _identity(suite)
        self.keys = DictEnvelopeKeys()
        self.keys.add(self.identity)
        self.sealer = EnvelopeSealer(self.identity)
        self.opener = EnvelopeOpener("PLATFORM-44", self.keys, suites=[suite.name])

    def seal(self, body: bytes = b'{"op":"ping"}', when: datetime = NOW) -> bytes:
        """Seal one envelope for PLATFORM-44."""
        return self.sealer.seal("PLATFORM-44", "M-1", body, when)


def _reject(opener: EnvelopeOpener, data: bytes, now: datetime = NOW) -> EnvelopeRejectedError:
    with pytest.raises(EnvelopeRejectedError) as info:
        opener.open(data, now)
    return info.value


def _resign(data: bytes, identity: SenderIdentity, **changes: Any) -> bytes:  # noqa: ANN401
    """Change header fields and sign again (a validly signed but wrong envelope)."""
    envelope = Envelope.from_bytes(data)
    fields = {name: getattr(envelope.header, name) for name in EnvelopeHeader.__dataclass_fields__}
    fields.update(changes)
    header = EnvelopeHeader(**fields)
    return seal(header, b"body", signing_key=identity.signing_key, aead_key=identity.aead_key)


# ---------------------------------------------------------------- round trips
@ALL_SUITES
def test_round_trip(suite: CryptoSuite) -> None:
    """A sealed envelope opens to the same body and header fields."""
    pair = Pair(suite)
    opened = pair.opener.open(pair.seal(b"\x00binary\xff" * 100), NOW)
    assert opened.body == b"\x00binary\xff" * 100
    header = opened.header
    assert (header.sender, header.receiver, header.message_id) == (
        "440100-B001",
        "PLATFORM-44",
        "M-1",
    )
    assert header.suite == suite.name
    assert header.timestamp_ms == to_epoch_ms(NOW)
    assert (header.key_id, header.key_version, header.repeat) == ("branch-sig", 1, False)


@ALL_SUITES
def test_empty_body_and_repeat_flag(suite: CryptoSuite) -> None:
    """An empty body seals; the repeat flag survives; a retry is not a replay."""
    pair = Pair(suite)
    first = pair.opener.open(pair.sealer.seal("PLATFORM-44", "M-7", b"", NOW), NOW)
    retry = pair.sealer.seal("PLATFORM-44", "M-7", b"", NOW, repeat=True)
    opened = pair.opener.open(retry, NOW)
    assert first.body == opened.body == b""
    assert opened.header.repeat
    assert opened.header.nonce != first.header.nonce


def test_opened_envelope_repr_hides_body_and_keys() -> None:
    """Neither the plaintext nor the AEAD key shows in a repr."""
    pair = Pair(GM)
    opened = pair.opener.open(pair.seal(b"SECRET-PLAINTEXT"), NOW)
    assert "SECRET-PLAINTEXT" not in repr(opened)
    assert pair.identity.aead_key.hex() not in repr(pair.identity)
    assert "aead_key" not in repr(pair.identity)


def test_naive_datetime_is_refused() -> None:
    """Sealing or opening with a naive datetime is local misuse (ValueError)."""
    pair = Pair(INTL)
    with pytest.raises(ValueError, match="timezone"):
        pair.seal(when=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="timezone"):
        pair.opener.open(pair.seal(), NOW.replace(tzinfo=None))


def test_seal_refuses_a_key_of_another_suite() -> None:
    """A header saying gm with an intl signing key is refused before anything is sealed."""
    identity = _identity(INTL)
    header = EnvelopeHeader(
        sender="A",
        receiver="B",
        message_id="M",
        timestamp_ms=0,
        nonce=bytes(12),
        suite="gm",
        key_id="k",
        key_version=1,
    )
    with pytest.raises(SuiteMismatchError):
        seal(header, b"", signing_key=identity.signing_key, aead_key=bytes(16))


# ------------------------------------------------------------------ refusals
def test_every_refusal_is_a_security_error_with_a_code() -> None:
    """Refusals share one root under SecurityError and carry their code."""
    assert issubclass(EnvelopeRejectedError, SecurityError)
    codes = {
        cls.code
        for cls in (
            SuiteNotAcceptedError,
            WrongReceiverError,
            TimestampOutOfWindowError,
            UnknownKeyError,
            BadSignatureError,
            DecryptionFailedError,
            ReplayedNonceError,
            ReplayUnverifiableError,
        )
    }
    assert len(codes) == 8
    assert all(code.startswith("envelope.") for code in codes)


@ALL_SUITES
def test_bad_signature(suite: CryptoSuite) -> None:
    """A flipped signature bit, or a flipped body bit, is envelope.bad_signature."""
    pair = Pair(suite)
    data = pair.seal()
    for position in (len(data) - 1, len(data) - 70):
        tampered = bytearray(data)
        tampered[position] ^= 0x01
        error = _reject(pair.opener, bytes(tampered))
        assert isinstance(error, BadSignatureError)
        assert error.code == "envelope.bad_signature"
        assert error.header is not None


@ALL_SUITES
def test_signature_by_an_impostor(suite: CryptoSuite) -> None:
    """An envelope signed by another key under the sender's name is refused."""
    pair = Pair(suite)
    impostor = _identity(suite)
    forged = EnvelopeSealer(impostor).seal("PLATFORM-44", "M-1", b"x", NOW)
    assert _reject(pair.opener, forged).code == "envelope.bad_signature"


@ALL_SUITES
def test_unknown_key_id_version_and_sender(suite: CryptoSuite) -> None:
    """Unknown sender, key id or key version is envelope.unknown_key."""
    pair = Pair(suite)
    stranger = EnvelopeSealer(_identity(suite, sender="STRANGER"))
    assert _reject(pair.opener, stranger.seal("PLATFORM-44", "M", b"", NOW)).code == (
        "envelope.unknown_key"
    )
    for changes in ({"key_id": "other"}, {"key_version": 2}):
        data = _resign(pair.seal(), pair.identity, **changes)
        error = _reject(pair.opener, data)
        assert isinstance(error, UnknownKeyError)
        assert error.code == "envelope.unknown_key"


def test_verify_key_of_another_suite_is_unknown() -> None:
    """A gm envelope whose key set holds an intl verify key is envelope.unknown_key."""
    gm = _identity(GM)
    keys = DictEnvelopeKeys()
    keys.add_public(
        gm.sender, gm.key_id, gm.key_version, (INTL.generate_signing_key().public_key, gm.aead_key)
    )
    opener = EnvelopeOpener("PLATFORM-44", keys)
    data = EnvelopeSealer(gm).seal("PLATFORM-44", "M", b"", NOW)
    assert _reject(opener, data).code == "envelope.unknown_key"


@ALL_SUITES
@pytest.mark.parametrize(
    "offset",
    [DEFAULT_WINDOW + timedelta(milliseconds=1), -DEFAULT_WINDOW - timedelta(milliseconds=1)],
    ids=["too-old", "too-far-ahead"],
)
def test_timestamp_outside_window(suite: CryptoSuite, offset: timedelta) -> None:
    """One millisecond beyond the window either way is envelope.timestamp_out_of_window."""
    pair = Pair(suite)
    error = _reject(pair.opener, pair.seal(), NOW + offset)
    assert isinstance(error, TimestampOutOfWindowError)
    assert error.code == "envelope.timestamp_out_of_window"
    assert error.window_ms == 300_000
    assert error.now_ms == to_epoch_ms(NOW + offset)


@ALL_SUITES
def test_timestamp_at_window_edges_is_accepted(suite: CryptoSuite) -> None:
    """Exactly the window away, either way, still opens."""
    pair = Pair(suite)
    assert pair.opener.open(pair.seal(), NOW + DEFAULT_WINDOW).body
    assert pair.opener.open(pair.seal(), NOW - DEFAULT_WINDOW).body


def test_window_is_configurable() -> None:
    """A 10-second window refuses an envelope 11 seconds old."""
    pair = Pair(GM)
    opener = EnvelopeOpener("PLATFORM-44", pair.keys, window=timedelta(seconds=10))
    assert opener.open(pair.seal(), NOW + timedelta(seconds=10)).body
    error = _reject(opener, pair.seal(), NOW + timedelta(seconds=11))
    assert error.code == "envelope.timestamp_out_of_window"


@ALL_SUITES
def test_replayed_nonce(suite: CryptoSuite) -> None:
    """The same envelope opened twice is envelope.replayed_nonce the second time."""
    pair = Pair(suite)
    data = pair.seal()
    pair.opener.open(data, NOW)
    error = _reject(pair.opener, data, NOW + timedelta(seconds=1))
    assert isinstance(error, ReplayedNonceError)
    assert error.code == "envelope.replayed_nonce"


def test_same_nonce_from_two_senders_is_not_a_replay() -> None:
    """Replay keys are (sender, nonce): another sender may use the same nonce."""
    first, second = _identity(GM, sender="A-1"), _identity(GM, sender="A-2")
    keys = DictEnvelopeKeys()
    keys.add(first)
    keys.add(second)
    opener = EnvelopeOpener("PLATFORM-44", keys)

    def fixed(size: int) -> bytes:
        return bytes(size)

    for identity in (first, second):
        sealer = EnvelopeSealer(identity, random_bytes=fixed)
        assert opener.open(sealer.seal("PLATFORM-44", "M", b"x", NOW), NOW).body == b"x"


def test_forged_envelopes_do_not_enter_the_replay_cache() -> None:
    """A badly signed envelope is refused without spending its nonce."""
    pair = Pair(INTL)
    data = pair.seal()
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    assert _reject(pair.opener, tampered).code == "envelope.bad_signature"
    assert len(pair.opener.replay_cache) == 0
    assert pair.opener.open(data, NOW).body


@ALL_SUITES
def test_wrong_receiver(suite: CryptoSuite) -> None:
    """An envelope for another receiver is envelope.wrong_receiver."""
    pair = Pair(suite)
    data = pair.sealer.seal("PLATFORM-45", "M-1", b"x", NOW)
    error = _reject(pair.opener, data)
    assert isinstance(error, WrongReceiverError)
    assert error.code == "envelope.wrong_receiver"
    assert error.expected == "PLATFORM-44"


@ALL_SUITES
def test_decryption_failure(suite: CryptoSuite) -> None:
    """A validly signed envelope under the wrong AEAD key is envelope.decryption_failed."""
    pair = Pair(suite)
    wrong = SenderIdentity(
        sender=pair.identity.sender,
        key_id=pair.identity.key_id,
        key_version=pair.identity.key_version,
        signing_key=pair.identity.signing_key,
        aead_key=b"\xee" * suite.aead_key_size,
    )
    error = _reject(pair.opener, EnvelopeSealer(wrong).seal("PLATFORM-44", "M", b"x", NOW))
    assert isinstance(error, DecryptionFailedError)
    assert error.code == "envelope.decryption_failed"


def test_suite_not_accepted() -> None:
    """An intl envelope at a gm-only opener is envelope.suite_not_accepted."""
    intl = Pair(INTL)
    opener = EnvelopeOpener("PLATFORM-44", intl.keys, suites=["gm"])
    error = _reject(opener, intl.seal())
    assert isinstance(error, SuiteNotAcceptedError)
    assert error.code == "envelope.suite_not_accepted"


@ALL_SUITES
def test_truncated_and_malformed(suite: CryptoSuite) -> None:
    """Cut or garbled bytes are refused with the codec's code and no header."""
    pair = Pair(suite)
    data = pair.seal()
    cases = {
        data[:-1]: "envelope.truncated",
        data[:10]: "envelope.truncated",
        b"": "envelope.truncated",
        data + b"\x00": "envelope.malformed",
        b"XX" + data[2:]: "envelope.malformed",
        data[:2] + b"\x02" + data[3:]: "envelope.unsupported_version",
        data[:3] + b"\x09" + data[4:]: "envelope.unknown_suite",
    }
    for garbled, code in cases.items():
        error = _reject(pair.opener, garbled)
        assert isinstance(error, EnvelopeFormatError)
        assert error.code == code
        assert error.header is None


# ------------------------------------------------------------------ rotation
@ALL_SUITES
def test_rotation_new_signs_old_verifies_until_retired(suite: CryptoSuite) -> None:
    """Version 2 seals; version 1 envelopes still open until version 1 is retired."""
    old = _identity(suite, version=1)
    new = SenderIdentity(
        sender=old.sender,
        key_id=old.key_id,
        key_version=2,
        signing_key=suite.generate_signing_key(),
        aead_key=b"\x22" * suite.aead_key_size,
    )
    keys = DictEnvelopeKeys()
    keys.add(old)
    keys.add(new)
    opener = EnvelopeOpener("PLATFORM-44", keys)
    in_flight = EnvelopeSealer(old).seal("PLATFORM-44", "M-old", b"old", NOW)
    late = EnvelopeSealer(old).seal("PLATFORM-44", "M-late", b"late", NOW)
    fresh = EnvelopeSealer(new).seal("PLATFORM-44", "M-new", b"new", NOW)
    assert opener.open(fresh, NOW).header.key_version == 2
    assert opener.open(in_flight, NOW).body == b"old"
    keys.retire(old.sender, old.key_id, 1)
    assert _reject(opener, late).code == "envelope.unknown_key"
    assert opener.open(EnvelopeSealer(new).seal("PLATFORM-44", "M", b"n", NOW), NOW).body == b"n"


# -------------------------------------------------------------- replay cache
def test_replay_cache_expires_entries_leaving_the_window() -> None:
    """Entries older than the expiry bound are dropped on the next check."""
    cache = ReplayCache(max_entries=10)
    assert cache.check_and_add("A", b"n1", 1_000, expire_before_ms=0) == "fresh"
    assert cache.check_and_add("A", b"n1", 1_000, expire_before_ms=0) == "replayed"
    assert cache.check_and_add("A", b"n2", 5_000, expire_before_ms=2_000) == "fresh"
    assert len(cache) == 1


def test_replay_cache_is_bounded_and_fails_closed() -> None:
    """Past max_entries the oldest is evicted and older timestamps become unverifiable."""
    cache = ReplayCache(max_entries=3)
    stamps = count(100)
    for index in range(5):
        verdict = cache.check_and_add("A", bytes([index]), next(stamps), expire_before_ms=0)
        assert verdict == "fresh"
    assert len(cache) == 3
    assert cache.horizon_ms == 101
    # The evicted nonces (timestamps 100, 101) can no longer be told apart from replays.
    assert cache.check_and_add("A", bytes([0]), 100, expire_before_ms=0) == "unverifiable"
    assert cache.check_and_add("A", b"new", 101, expire_before_ms=0) == "unverifiable"
    assert cache.check_and_add("A", bytes([4]), 104, expire_before_ms=0) == "replayed"
    assert cache.check_and_add("A", b"new", 102, expire_before_ms=0) == "fresh"


def test_replay_cache_refuses_a_zero_bound() -> None:
    """A cache must hold at least one entry."""
    with pytest.raises(ValueError, match="max_entries"):
        ReplayCache(max_entries=0)


def test_opener_reports_unverifiable_replays() -> None:
    """With a one-entry cache, an older envelope after a newer one is unverifiable."""
    pair = Pair(GM)
    opener = EnvelopeOpener("PLATFORM-44", pair.keys, replay_cache=ReplayCache(max_entries=1))
    older = pair.seal(when=NOW)
    newer = pair.seal(when=NOW + timedelta(seconds=1))
    opener.open(older, NOW)
    opener.open(newer, NOW)
    error = _reject(opener, pair.seal(when=NOW), NOW)
    assert isinstance(error, ReplayUnverifiableError)
    assert error.code == "envelope.replay_unverifiable"


def test_refusals_are_counted_by_code() -> None:
    """Each refusal reaches the on_refused callback with its code (the daemon's metric)."""
    from gateway.runtime.metrics import Metrics  # noqa: PLC0415 - the gateway's counter, wired here

    metrics = Metrics()
    pair = Pair(GM)
    opener = EnvelopeOpener(
        "PLATFORM-44",
        pair.keys,
        suites=["gm"],
        on_refused=lambda code: metrics.envelopes_refused.labels(code).inc(),
    )
    sealed = pair.seal()
    opener.open(sealed, NOW)
    for data in (sealed, sealed[:10], sealed[:-1] + bytes([sealed[-1] ^ 1])):
        _reject(opener, data)
    text = generate_latest(metrics.registry).decode()
    assert 'branchd_envelopes_refused_total{code="envelope.replayed_nonce"} 1.0' in text
    assert 'branchd_envelopes_refused_total{code="envelope.bad_signature"} 1.0' in text
    assert text.count("branchd_envelopes_refused_total{") == 3

"""Sealing and opening message envelopes (encrypt-then-sign, replay-safe).

Sealing: the body is AEAD-encrypted with the sender's key set's AEAD key, the
header's 12-byte nonce and the encoded header as associated data; the whole
signed part (header, body length, body) is then signed with the sender's
signing key. The format is :mod:`protocols.envelope` (docs/protocols/envelope.md).

Opening checks, cheapest first, and refuses with a stable ``code``:

====================================  =============================================
code                                  refused because
====================================  =============================================
``envelope.truncated``                the bytes end early
``envelope.malformed``                a field is invalid (magic, lengths, text...)
``envelope.unsupported_version``      another format version
``envelope.unknown_suite``            the suite byte names no suite
``envelope.suite_not_accepted``       a suite this opener is not configured for
``envelope.wrong_receiver``           addressed to someone else
``envelope.timestamp_out_of_window``  sealed too long ago or too far ahead
``envelope.unknown_key``              no verify/AEAD key for (sender, key id, version)
``envelope.bad_signature``            the signature does not verify
``envelope.decryption_failed``        the AEAD tag does not verify
``envelope.replayed_nonce``           this (sender, nonce) was opened before
``envelope.replay_unverifiable``      older than what the full replay cache remembers
====================================  =============================================

The replay cache is consulted only after the signature verified, so forged
envelopes cannot fill it or shadow genuine nonces. Key rotation: a sender seals
with its newest key version; the receiver keeps older versions in its
:class:`EnvelopeKeys` until they are retired, and an envelope under a retired
version is refused as ``envelope.unknown_key``.
"""

from __future__ import annotations

import heapq
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal, Protocol

from protocols.envelope import (
    NONCE_SIZE,
    Envelope,
    EnvelopeDecodeError,
    EnvelopeHeader,
)
from security.errors import SecurityError
from security.suites import (
    AeadAuthenticationError,
    SigningKey,
    SuiteMismatchError,
    VerifyKey,
    get_suite,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from security.suites import CryptoSuite

__all__ = [
    "DEFAULT_REPLAY_CACHE_ENTRIES",
    "DEFAULT_WINDOW",
    "BadSignatureError",
    "DecryptionFailedError",
    "DictEnvelopeKeys",
    "EnvelopeFormatError",
    "EnvelopeKeys",
    "EnvelopeOpener",
    "EnvelopeRejectedError",
    "EnvelopeSealer",
    "OpenedEnvelope",
    "ReplayCache",
    "ReplayUnverifiableError",
    "ReplayedNonceError",
    "SenderIdentity",
    "SuiteNotAcceptedError",
    "TimestampOutOfWindowError",
    "UnknownKeyError",
    "WrongReceiverError",
    "seal",
]

#: How far an envelope's timestamp may be from the receiver's clock, either way.
DEFAULT_WINDOW: Final = timedelta(minutes=5)
#: Replay cache bound: ~260 bytes per entry (tracemalloc), so ~13 MB; 50,000 nonces
#: in a 10-minute window is 83 envelopes/s sustained, far above a branch's load.
DEFAULT_REPLAY_CACHE_ENTRIES: Final = 50_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)


def to_epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch, exactly (no float rounding).

    Raises:
        ValueError: ``moment`` has no time zone.
    """
    if moment.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required")
    return (moment - _EPOCH) // _MILLISECOND


# ------------------------------------------------------------------- errors
class EnvelopeRejectedError(SecurityError):
    """An envelope was refused; ``code`` says why.

    Attributes:
        code: Stable machine-readable reason (see the module docstring).
        header: The envelope's header when it could be decoded, else ``None``.
    """

    code: str = "envelope.rejected"

    def __init__(self, message: str, header: EnvelopeHeader | None) -> None:
        """Record the header (which holds no secrets)."""
        super().__init__(message)
        self.header = header


class EnvelopeFormatError(EnvelopeRejectedError):
    """The bytes are not a valid envelope; ``code`` is the codec's.

    Attributes:
        offset: Where decoding stopped.
    """

    def __init__(self, cause: EnvelopeDecodeError) -> None:
        """Adopt the codec error's code and offset."""
        super().__init__(f"malformed envelope ({cause.code})", None)
        self.code = cause.code
        self.offset = cause.offset


class SuiteNotAcceptedError(EnvelopeRejectedError):
    """The envelope uses a suite this opener is not configured to accept."""

    code = "envelope.suite_not_accepted"


class WrongReceiverError(EnvelopeRejectedError):
    """The envelope is addressed to another receiver.

    Attributes:
        expected: This opener's receiver name.
    """

    code = "envelope.wrong_receiver"

    def __init__(self, header: EnvelopeHeader, expected: str) -> None:
        """Record both names."""
        super().__init__(f"envelope for {header.receiver!r}, not {expected!r}", header)
        self.expected = expected


class TimestampOutOfWindowError(EnvelopeRejectedError):
    """The envelope's timestamp is too far from the receiver's clock.

    Attributes:
        now_ms: The receiver's clock, ms since the epoch.
        window_ms: The allowed distance either way, ms.
    """

    code = "envelope.timestamp_out_of_window"

    def __init__(self, header: EnvelopeHeader, now_ms: int, window_ms: int) -> None:
        """Record the clock and the window."""
        skew = header.timestamp_ms - now_ms
        super().__init__(f"timestamp {skew:+d} ms from now, window {window_ms} ms", header)
        self.now_ms = now_ms
        self.window_ms = window_ms


class UnknownKeyError(EnvelopeRejectedError):
    """No key is known (or still valid) for (sender, key id, key version)."""

    code = "envelope.unknown_key"


class BadSignatureError(EnvelopeRejectedError):
    """The signature does not verify under the sender's key."""

    code = "envelope.bad_signature"


class DecryptionFailedError(EnvelopeRejectedError):
    """The body's AEAD tag does not verify."""

    code = "envelope.decryption_failed"


class ReplayedNonceError(EnvelopeRejectedError):
    """This sender's nonce was already opened within the window."""

    code = "envelope.replayed_nonce"


class ReplayUnverifiableError(EnvelopeRejectedError):
    """The envelope is older than the oldest nonce the full replay cache still holds."""

    code = "envelope.replay_unverifiable"


# --------------------------------------------------------------------- keys
class EnvelopeKeys(Protocol):
    """Where the opener finds a sender's keys, by (sender, key id, key version).

    A key store returns ``None`` for anything unknown or retired.
    """

    def verify_key(self, sender: str, key_id: str, key_version: int) -> VerifyKey | None:
        """Return the sender's verify key for this key set version."""
        ...

    def aead_key(self, sender: str, key_id: str, key_version: int) -> bytes | None:
        """Return the AEAD key for this key set version."""
        ...


@dataclass(frozen=True, slots=True)
class _KeySet:
    verify_key: VerifyKey
    aead_key: bytes = field(repr=False)


class DictEnvelopeKeys:
    """An in-memory :class:`EnvelopeKeys`, for tests, simulators and small setups."""

    def __init__(self) -> None:
        """Start empty."""
        self._sets: dict[tuple[str, str, int], _KeySet] = {}

    def add(self, identity: SenderIdentity) -> None:
        """Trust a sender's key set version (its public half and AEAD key)."""
        index = (identity.sender, identity.key_id, identity.key_version)
        self._sets[index] = _KeySet(identity.signing_key.public_key, identity.aead_key)

    def add_public(
        self, sender: str, key_id: str, key_version: int, keys: tuple[VerifyKey, bytes]
    ) -> None:
        """Trust a key set version given as (verify key, AEAD key)."""
        self._sets[sender, key_id, key_version] = _KeySet(*keys)

    def retire(self, sender: str, key_id: str, key_version: int) -> None:
        """Forget a key set version: envelopes under it are refused from now on."""
        self._sets.pop((sender, key_id, key_version), None)

    def verify_key(self, sender: str, key_id: str, key_version: int) -> VerifyKey | None:
        """Return the verify key, or ``None``."""
        found = self._sets.get((sender, key_id, key_version))
        return None if found is None else found.verify_key

    def aead_key(self, sender: str, key_id: str, key_version: int) -> bytes | None:
        """Return the AEAD key, or ``None``."""
        found = self._sets.get((sender, key_id, key_version))
        return None if found is None else found.aead_key


@dataclass(frozen=True, slots=True)
class SenderIdentity:
    """A sender's current key set: who it is and what it seals with.

    Attributes:
        sender: The sender's name on the wire.
        key_id: The key set's id.
        key_version: The key set's version; rotation makes a new identity.
        signing_key: The private signing key (its suite is the envelope's suite).
        aead_key: The AEAD key for this key set version.
    """

    sender: str
    key_id: str
    key_version: int
    signing_key: SigningKey
    aead_key: bytes = field(repr=False)


# ------------------------------------------------------------------ sealing
def seal(
    header: EnvelopeHeader,
    body: bytes,
    *,
    signing_key: SigningKey,
    aead_key: bytes,
) -> bytes:
    """Encrypt ``body`` and sign the envelope described by ``header``.

    The suite is ``header.suite``; the signing key must belong to it. The
    header's nonce is the AEAD nonce: never reuse one with the same AEAD key.

    Raises:
        SuiteMismatchError: The signing key belongs to another suite.
        InvalidParameterError: The AEAD key has the wrong length.
        EnvelopeEncodeError: The body is too large.
    """
    suite = get_suite(header.suite)
    if signing_key.suite != suite.name:
        raise SuiteMismatchError(suite.name, signing_key.suite)
    ciphertext = suite.aead_encrypt(aead_key, header.nonce, body, header.to_bytes())
    signature = suite.sign(signing_key, Envelope.signed_part(header, ciphertext))
    return Envelope(header=header, body=ciphertext, signature=signature).to_bytes()


class EnvelopeSealer:
    """Seals envelopes for one sender identity, with fresh random nonces."""

    def __init__(
        self,
        identity: SenderIdentity,
        *,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        """Seal as ``identity``; ``random_bytes`` makes nonces (injectable for tests)."""
        self.identity = identity
        self._random_bytes = random_bytes

    def seal(
        self,
        receiver: str,
        message_id: str,
        body: bytes,
        now: datetime,
        *,
        repeat: bool = False,
    ) -> bytes:
        """Seal ``body`` for ``receiver`` at time ``now`` (timezone-aware).

        Set ``repeat`` when sending a message id again (a store-and-forward
        retry); every call uses a new nonce, so a retry is not a replay.
        """
        identity = self.identity
        header = EnvelopeHeader(
            sender=identity.sender,
            receiver=receiver,
            message_id=message_id,
            timestamp_ms=to_epoch_ms(now),
            nonce=self._random_bytes(NONCE_SIZE),
            suite=identity.signing_key.suite,
            key_id=identity.key_id,
            key_version=identity.key_version,
            repeat=repeat,
        )
        return seal(header, body, signing_key=identity.signing_key, aead_key=identity.aead_key)


# ------------------------------------------------------------- replay cache
class ReplayCache:
    """Bounded memory of (sender, nonce) pairs seen within the time window.

    Entries expire when their timestamp leaves the window (older envelopes are
    refused by the timestamp check anyway). When ``max_entries`` unexpired
    entries are held, the oldest is evicted and the *horizon* rises to its
    timestamp: from then on anything at or before the horizon is refused as
    unverifiable, so eviction never lets a replay through; it only narrows the
    window under a flood. Memory: about 260 bytes per entry (key tuple, nonce,
    dict slot, heap tuple; measured with tracemalloc), so the default of 50,000
    entries stays near 13 MB.
    """

    def __init__(self, max_entries: int = DEFAULT_REPLAY_CACHE_ENTRIES) -> None:
        """Hold at most ``max_entries`` pairs.

        Raises:
            ValueError: ``max_entries`` is less than 1.
        """
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.horizon_ms = -1
        self._seen: dict[tuple[str, bytes], int] = {}
        self._heap: list[tuple[int, str, bytes]] = []

    def __len__(self) -> int:
        """Number of pairs remembered."""
        return len(self._seen)

    def check_and_add(
        self, sender: str, nonce: bytes, timestamp_ms: int, *, expire_before_ms: int
    ) -> Literal["fresh", "replayed", "unverifiable"]:
        """Remember the pair if it is new; say whether it was.

        ``expire_before_ms`` drops every entry older than it first.
        """
        heap = self._heap
        while heap and heap[0][0] < expire_before_ms:
            stamp, old_sender, old_nonce = heapq.heappop(heap)
            del self._seen[old_sender, old_nonce]
        if timestamp_ms <= self.horizon_ms:
            return "unverifiable"
        if (sender, nonce) in self._seen:
            return "replayed"
        self._seen[sender, nonce] = timestamp_ms
        heapq.heappush(heap, (timestamp_ms, sender, nonce))
        if len(heap) > self.max_entries:
            stamp, old_sender, old_nonce = heapq.heappop(heap)
            del self._seen[old_sender, old_nonce]
            self.horizon_ms = max(self.horizon_ms, stamp)
        return "fresh"


# ------------------------------------------------------------------ opening
@dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    """An envelope that passed every check.

    Attributes:
        header: The authenticated header.
        body: The decrypted body (kept out of ``repr``).
    """

    header: EnvelopeHeader
    body: bytes = field(repr=False)


class EnvelopeOpener:
    """Opens envelopes addressed to one receiver, refusing anything doubtful."""

    def __init__(  # noqa: PLR0913 - keyword-only settings with defaults
        self,
        receiver: str,
        keys: EnvelopeKeys,
        *,
        suites: Iterable[str] = ("gm", "intl"),
        window: timedelta = DEFAULT_WINDOW,
        replay_cache: ReplayCache | None = None,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        """Configure the opener.

        Args:
            receiver: This party's name; envelopes for anyone else are refused.
            keys: Where senders' verify and AEAD keys are looked up.
            suites: Names of the suites accepted (the configured ones).
            window: Largest distance between an envelope's timestamp and ``now``.
            replay_cache: Shared cache; a private bounded one by default.
            on_refused: Called with the refusal ``code`` of every refused envelope
                (the daemon counts them in a metric).
        """
        self.receiver = receiver
        self._keys = keys
        self._suites: dict[str, CryptoSuite] = {name: get_suite(name) for name in suites}
        self._window_ms = window // _MILLISECOND
        self.replay_cache = ReplayCache() if replay_cache is None else replay_cache
        self._on_refused = on_refused

    def open(self, data: bytes | bytearray | memoryview, now: datetime) -> OpenedEnvelope:
        """Check and decrypt one envelope received at ``now`` (timezone-aware).

        Raises:
            EnvelopeRejectedError: A subclass per reason, with a stable ``code``.
        """
        try:
            return self._open(data, now)
        except EnvelopeRejectedError as refused:
            if self._on_refused is not None:
                self._on_refused(refused.code)
            raise

    def _open(self, data: bytes | bytearray | memoryview, now: datetime) -> OpenedEnvelope:
        try:
            envelope = Envelope.from_bytes(data)
        except EnvelopeDecodeError as exc:
            raise EnvelopeFormatError(exc) from None
        header = envelope.header
        suite = self._suites.get(header.suite)
        if suite is None:
            raise SuiteNotAcceptedError(f"suite {header.suite!r} not accepted", header)
        if header.receiver != self.receiver:
            raise WrongReceiverError(header, self.receiver)
        now_ms = to_epoch_ms(now)
        if abs(header.timestamp_ms - now_ms) > self._window_ms:
            raise TimestampOutOfWindowError(header, now_ms, self._window_ms)
        key_index = (header.sender, header.key_id, header.key_version)
        verify_key = self._keys.verify_key(*key_index)
        aead_key = self._keys.aead_key(*key_index)
        if verify_key is None or aead_key is None or verify_key.suite != suite.name:
            raise UnknownKeyError("no key for sender, key id and version", header)
        if not suite.verify(verify_key, envelope.signature, envelope.signed_bytes()):
            raise BadSignatureError("signature does not verify", header)
        try:
            body = suite.aead_decrypt(aead_key, header.nonce, envelope.body, header.to_bytes())
        except AeadAuthenticationError:
            raise DecryptionFailedError("body does not authenticate", header) from None
        verdict = self.replay_cache.check_and_add(
            header.sender,
            header.nonce,
            header.timestamp_ms,
            expire_before_ms=now_ms - self._window_ms,
        )
        if verdict == "replayed":
            raise ReplayedNonceError("nonce already seen", header)
        if verdict == "unverifiable":
            raise ReplayUnverifiableError("older than the replay cache remembers", header)
        return OpenedEnvelope(header=header, body=body)

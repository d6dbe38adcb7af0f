"""Commands of the PIN pad: what each request carries and what its reply means.

Builders (host side) return a :class:`Call` (command and data; the connection
numbers it); parsers turn data back into typed values on either side. Layouts
are in ``docs/protocols/pinpad.md``. Request data parsers raise
:class:`~protocols.pinpad.errors.PinPadParameterError` (the pad answers
``BAD_PARAMETER``); reply data parsers raise
:class:`~protocols.pinpad.errors.PinPadReplyError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from protocols.pinpad.errors import PinPadEncodeError, PinPadParameterError, PinPadReplyError
from protocols.pinpad.frames import Command, KeyAlgorithm, Prompt

__all__ = [
    "KCV_LENGTH",
    "MAX_ATTEMPTS",
    "MAX_ENTRY_TIMEOUT",
    "MAX_PIN_LENGTH",
    "MIN_PIN_LENGTH",
    "Call",
    "EncipheredPin",
    "EntryParams",
    "LoadKeyParams",
    "PadInfo",
    "Timeouts",
    "abort",
    "info",
    "load_key",
    "parse_info",
    "parse_kcv",
    "parse_pin",
    "parse_show",
    "read_new_pin",
    "read_pin",
    "show",
]

KCV_LENGTH: Final = 3  # bytes of E(zero block) shown as the key check value (ANSI X9.24-1)
MIN_PIN_LENGTH: Final = 4  # digits, ISO 9564-1 clause 8.1
MAX_PIN_LENGTH: Final = 12
MAX_ENTRY_TIMEOUT: Final = 255  # seconds, one byte on the wire
MAX_ATTEMPTS: Final = 9  # READ_NEW_PIN: enter + re-enter rounds before MISMATCH
MAX_INFO_TEXT: Final = 64  # bytes of the INFO text
_FORMAT_0_3_MIN_ACCOUNT: Final = 13  # 12 digits and the check digit (ISO 9564-1 format 0)

_ACCOUNT_RE: Final = re.compile(rb"[0-9]{1,19}")
_KCV_RE: Final = re.compile(r"[0-9A-F]{6}")
_FLAG_TMK, _FLAG_TPK = 0x01, 0x02
_INFO_HEAD: Final = 5  # FLAGS ALG KCV(3)
_ENTRY_HEAD: Final = 5  # PROMPT FORMAT MIN MAX TIMEOUT
_PRINTABLE: Final = frozenset(range(0x20, 0x7F))


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long the host waits (seconds).

    Attributes:
        command: For the reply to INFO, LOAD_KEY, SHOW and ABORT.
        pad_grace: The pad's own entry timeout is the host's plus this much, so
            the host normally gives up first (and sends ABORT); the pad's limit
            only matters when the host is gone.
    """

    command: float = 3.0
    pad_grace: float = 5.0


@dataclass(frozen=True, slots=True)
class Call:
    """A command to send: the connection numbers it and frames it.

    Attributes:
        command: The command.
        data: Its parameters (may hold an account number: not in the ``repr``).
    """

    command: Command
    data: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class EntryParams:
    """Parameters of READ_PIN and READ_NEW_PIN.

    ::

        READ_PIN      PROMPT FORMAT MIN MAX TIMEOUT          ACCOUNT (ASCII digits)
        READ_NEW_PIN  PROMPT FORMAT MIN MAX TIMEOUT ATTEMPTS ACCOUNT (ASCII digits)

    Attributes:
        prompt: What the pad shows first (READ_NEW_PIN: then REENTER).
        pin_block_format: ISO 9564-1 format 0, 3 or 4 (must fit the pad's key).
        min_length: Fewest digits ENTER accepts (4-12).
        max_length: Most digits the pad takes (min-12).
        timeout: Seconds without a key press before the pad gives up (1-255).
        account: The account (PAN) the PIN block is bound to, 1-19 digits
            (13-19 for formats 0 and 3); personal data, not in the ``repr``.
        attempts: READ_NEW_PIN: enter + re-enter rounds before MISMATCH (1-9).
    """

    prompt: Prompt
    pin_block_format: int
    min_length: int
    max_length: int
    timeout: int
    account: str = field(repr=False)
    attempts: int = 1

    def __post_init__(self) -> None:
        """Refuse parameters the pad would refuse."""
        if not isinstance(self.prompt, Prompt):
            raise PinPadEncodeError("prompt", "a Prompt")
        if self.pin_block_format not in (0, 3, 4):
            raise PinPadEncodeError("pin_block_format", "ISO 9564-1 format 0, 3 or 4")
        if not MIN_PIN_LENGTH <= self.min_length <= self.max_length <= MAX_PIN_LENGTH:
            raise PinPadEncodeError("length", "4 <= min_length <= max_length <= 12")
        if not 1 <= self.timeout <= MAX_ENTRY_TIMEOUT:
            raise PinPadEncodeError("timeout", f"1-{MAX_ENTRY_TIMEOUT} seconds")
        if not 1 <= self.attempts <= MAX_ATTEMPTS:
            raise PinPadEncodeError("attempts", f"1-{MAX_ATTEMPTS}")
        raw = self.account.encode("ascii", "replace") if isinstance(self.account, str) else b""
        if _ACCOUNT_RE.fullmatch(raw) is None:
            raise PinPadEncodeError("account", "1-19 decimal digits")
        if self.pin_block_format != 4 and len(raw) < _FORMAT_0_3_MIN_ACCOUNT:  # noqa: PLR2004 (format 4)
            raise PinPadEncodeError("account", "formats 0 and 3 need 13-19 digits")

    def to_data(self, command: Command) -> bytes:
        """The request data for ``command`` (READ_PIN or READ_NEW_PIN)."""
        head = bytes(
            (self.prompt, self.pin_block_format, self.min_length, self.max_length, self.timeout)
        )
        if command is Command.READ_NEW_PIN:
            head += bytes((self.attempts,))
        return head + self.account.encode("ascii")

    @classmethod
    def from_data(cls, command: Command, data: bytes) -> EntryParams:
        """Pad side: parse READ_PIN / READ_NEW_PIN data.

        Raises:
            PinPadParameterError: The data does not fit the layout or the bounds.
        """
        expected = "PROMPT FORMAT MIN MAX TIMEOUT [ATTEMPTS] ACCOUNT within bounds"
        head = _ENTRY_HEAD + (1 if command is Command.READ_NEW_PIN else 0)
        if len(data) <= head or _ACCOUNT_RE.fullmatch(data[head:]) is None:
            raise PinPadParameterError(command.label, expected)
        try:
            return cls(
                Prompt(data[0]),
                data[1],
                data[2],
                data[3],
                data[4],
                data[head:].decode("ascii"),
                data[5] if command is Command.READ_NEW_PIN else 1,
            )
        except (ValueError, PinPadEncodeError):
            raise PinPadParameterError(command.label, expected) from None


@dataclass(frozen=True, slots=True)
class LoadKeyParams:
    """Parameters of LOAD_KEY: a PIN key enciphered under the pad's TMK.

    ::

        ALG (1) | TPK enciphered under the TMK, ECB (16) | KCV (3)

    Attributes:
        algorithm: The key's algorithm (the TMK's too).
        wrapped: The TPK enciphered under the TMK (not in the ``repr``).
        key_check_value: The TPK's check value, six upper-case hex digits: the
            first 3 bytes of the zero block enciphered under the TPK.
    """

    algorithm: KeyAlgorithm
    wrapped: bytes = field(repr=False)
    key_check_value: str

    def __post_init__(self) -> None:
        """Refuse what cannot be a key."""
        if not isinstance(self.algorithm, KeyAlgorithm):
            raise PinPadEncodeError("algorithm", "a KeyAlgorithm")
        if not isinstance(self.wrapped, bytes) or len(self.wrapped) != self.algorithm.key_length:
            raise PinPadEncodeError("wrapped", f"{self.algorithm.key_length} bytes")
        if not isinstance(self.key_check_value, str) or not _KCV_RE.fullmatch(self.key_check_value):
            raise PinPadEncodeError("key_check_value", "six upper-case hex digits")

    def to_data(self) -> bytes:
        """The request data."""
        return bytes((self.algorithm,)) + self.wrapped + bytes.fromhex(self.key_check_value)

    @classmethod
    def from_data(cls, data: bytes) -> LoadKeyParams:
        """Pad side: parse LOAD_KEY data.

        Raises:
            PinPadParameterError: Unknown algorithm or wrong length.
        """
        try:
            algorithm = KeyAlgorithm(data[0]) if data else None
        except ValueError:
            algorithm = None
        if algorithm is None or len(data) != 1 + algorithm.key_length + KCV_LENGTH:
            raise PinPadParameterError("load_key", "ALG (1-3), 16 key bytes, 3 KCV bytes")
        return cls(algorithm, bytes(data[1:-KCV_LENGTH]), data[-KCV_LENGTH:].hex().upper())


@dataclass(frozen=True, slots=True)
class PadInfo:
    """The INFO reply: what the pad is and which keys it holds.

    ::

        FLAGS (1: bit 0 TMK present, bit 1 PIN key loaded) | ALG (1, 00 none)
        | KCV (3, 000000 none) | TEXT (printable ASCII, 0-64: model and firmware)

    Attributes:
        tmk_loaded: The key ceremony left a TMK in the pad.
        key_algorithm: The loaded PIN key's algorithm, if one is loaded.
        key_check_value: Its check value, if one is loaded.
        text: Model and firmware, e.g. ``"SSC-EPP-SIM 1.0.0"``.
    """

    tmk_loaded: bool
    key_algorithm: KeyAlgorithm | None
    key_check_value: str | None
    text: str

    def to_data(self) -> bytes:
        """Pad side: the reply data."""
        flags = (_FLAG_TMK if self.tmk_loaded else 0) | (_FLAG_TPK if self.key_algorithm else 0)
        kcv = bytes.fromhex(self.key_check_value) if self.key_check_value else bytes(KCV_LENGTH)
        text = self.text.encode("ascii", "replace")[:MAX_INFO_TEXT]
        return bytes((flags, self.key_algorithm or 0)) + kcv + text


def parse_info(data: bytes) -> PadInfo:
    """Host side: parse the INFO reply data.

    Raises:
        PinPadReplyError: It does not fit the layout.
    """
    expected = "FLAGS ALG KCV(3) printable text"
    if len(data) < _INFO_HEAD or len(data) > _INFO_HEAD + MAX_INFO_TEXT:
        raise PinPadReplyError("info", expected)
    flags, alg, kcv, text = data[0], data[1], data[2:_INFO_HEAD], data[_INFO_HEAD:]
    if any(b not in _PRINTABLE for b in text) or flags & ~(_FLAG_TMK | _FLAG_TPK):
        raise PinPadReplyError("info", expected)
    algorithm: KeyAlgorithm | None = None
    if flags & _FLAG_TPK:
        try:
            algorithm = KeyAlgorithm(alg)
        except ValueError:
            raise PinPadReplyError("info", expected) from None
    return PadInfo(
        tmk_loaded=bool(flags & _FLAG_TMK),
        key_algorithm=algorithm,
        key_check_value=kcv.hex().upper() if algorithm else None,
        text=text.decode("ascii"),
    )


def parse_kcv(data: bytes) -> str:
    """Host side: the LOAD_KEY reply data, the loaded key's check value.

    Raises:
        PinPadReplyError: Not 3 bytes.
    """
    if len(data) != KCV_LENGTH:
        raise PinPadReplyError("load_key", "KCV (3)")
    return data.hex().upper()


@dataclass(frozen=True, slots=True)
class EncipheredPin:
    """The READ_PIN / READ_NEW_PIN reply: a PIN block under the pad's PIN key.

    ::

        KCV of the PIN key (3) | PIN block (8: 3DES; 16: SM4, AES)

    Attributes:
        key_check_value: Which key enciphered the block (six hex digits).
        block: The enciphered PIN block (never in the ``repr``).
    """

    key_check_value: str
    block: bytes = field(repr=False)

    def to_data(self) -> bytes:
        """Pad side: the reply data."""
        return bytes.fromhex(self.key_check_value) + self.block


def parse_pin(command: Command, data: bytes) -> EncipheredPin:
    """Host side: parse an OK reply to READ_PIN / READ_NEW_PIN.

    Raises:
        PinPadReplyError: Not a KCV and an 8- or 16-byte block.
    """
    if len(data) not in (KCV_LENGTH + 8, KCV_LENGTH + 16):
        raise PinPadReplyError(command.label, "KCV (3) and a PIN block of 8 or 16 bytes")
    return EncipheredPin(data[:KCV_LENGTH].hex().upper(), bytes(data[KCV_LENGTH:]))


def info() -> Call:
    """INFO: model, firmware and key state."""
    return Call(Command.INFO)


def load_key(params: LoadKeyParams) -> Call:
    """LOAD_KEY: a PIN key enciphered under the TMK, with its check value."""
    return Call(Command.LOAD_KEY, params.to_data())


def read_pin(params: EntryParams) -> Call:
    """READ_PIN: show the prompt, take one PIN, answer its enciphered PIN block."""
    return Call(Command.READ_PIN, params.to_data(Command.READ_PIN))


def read_new_pin(params: EntryParams) -> Call:
    """READ_NEW_PIN: enter and re-enter a new PIN; the pad compares the two."""
    return Call(Command.READ_NEW_PIN, params.to_data(Command.READ_NEW_PIN))


def show(prompt: Prompt) -> Call:
    """SHOW: put a prompt on the display (e.g. SUCCESS after the operation)."""
    if not isinstance(prompt, Prompt):
        raise PinPadEncodeError("prompt", "a Prompt")
    return Call(Command.SHOW, bytes((prompt,)))


def parse_show(data: bytes) -> Prompt:
    """Pad side: parse SHOW data.

    Raises:
        PinPadParameterError: Not one known prompt code.
    """
    if len(data) == 1 and data[0] in {p.value for p in Prompt}:
        return Prompt(data[0])
    raise PinPadParameterError("show", "one prompt code")


def abort() -> Call:
    """ABORT: end the entry under way (its reply comes first, status ABORTED)."""
    return Call(Command.ABORT)

"""The simulated key service (加密机): card cryptograms and MAC-ed card commands.

Card keys never leave it. It computes exactly what :mod:`security.cardcrypto`
defines and the card simulator checks (docs/protocols/sscard.md, "Card-key
cryptography"): the card keys are diversified from the issuing province's
master keys (:class:`~security.cardcrypto.CardMasterKeys`, one per purpose) by
the card identification code (一卡一密), with SM4 on third-generation cards and
two-key 3DES on second-generation ones.

* EXTERNAL AUTHENTICATE: the 8-byte cryptogram over the card's challenge;
* a protected command: ``CLA INS P1 P2 Lc data MAC``, the MAC under the key of
  the command's purpose (PIN reset, PIN unlock, application block/unblock),
  the challenge as initial vector;
* PIN reset: ``84 24 01 00 Lc E MAC``, ``E`` the new PIN enciphered under the
  card's PIN-reset key. The new PIN arrives as an ISO 9564 format 0 or 3 PIN
  block (16-byte SM4 layout) under the zone PIN key shared with the branches,
  bound to the account number :func:`pin_block_account` makes of the holder's
  social security number; the clear PIN exists only inside
  :meth:`SoftwareKeyService.pin_reset_command`;
* unlock: ``84 24 00 00 04 MAC`` (refills the retry counter, keeps the PIN).

Nothing here logs, and no error message holds a key, a PIN or a PIN block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

from protocols.apdu import CommandApdu
from protocols.sscard import CardAlgorithm, SscardEncodeError, pin_reset, pin_unlock
from protocols.sscard.commands import (
    CLA_SECURED,
    INS_APPLICATION_BLOCK,
    INS_APPLICATION_UNBLOCK,
    INS_PIN_RESET,
    P1_PIN_RESET,
    P1_PIN_UNLOCK,
)
from security.cardcrypto import (
    CardCryptoError,
    CardKeyPurpose,
    CardMasterKeys,
    diversify_key,
    encipher_pin,
    external_auth_cryptogram,
    mac_command,
)
from security.sm4 import SM4_BLOCK_SIZE, SM4_KEY_SIZE, sm4_ecb_decrypt
from simulators.card.cli import DEMO_MASTER_KEYS

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DEMO_ZONE_PIN_KEY",
    "CardKeyRef",
    "KeyService",
    "KeyServiceError",
    "SoftwareKeyService",
    "parse_algorithm",
    "pin_block_account",
]

#: Development zone PIN key shared by the simulated platforms and the demo branch.
DEMO_ZONE_PIN_KEY: Final = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
_HEADER_SIZE: Final = 4
_MAC_SIZE: Final = 4
_MAX_DATA: Final = 255 - _MAC_SIZE
_CARD_ID_HEX: Final = 32
_SSN_LENGTH: Final = 18
_PAN_DIGITS: Final = 12  # ISO 9564 formats 0/3: 12 rightmost digits without the check digit
_MIN_PIN: Final = 4
_MAX_PIN: Final = 12
_FORMAT_0: Final = 0
_FORMAT_3: Final = 3
_ALGORITHMS: Final[dict[str, CardAlgorithm]] = {"SM4": "sm4", "3DES": "3des"}
#: Which card key MACs which secured command, by (CLA, INS, P1); ``None``: any P1.
_PURPOSES: Final[dict[tuple[int, int, int | None], CardKeyPurpose]] = {
    (CLA_SECURED, INS_PIN_RESET, P1_PIN_RESET): CardKeyPurpose.PIN_RESET,
    (CLA_SECURED, INS_PIN_RESET, P1_PIN_UNLOCK): CardKeyPurpose.PIN_UNLOCK,
    (CLA_SECURED, INS_APPLICATION_BLOCK, None): CardKeyPurpose.APP_MAINTENANCE,
    (CLA_SECURED, INS_APPLICATION_UNBLOCK, None): CardKeyPurpose.APP_MAINTENANCE,
}


class KeyServiceError(Exception):
    """A key-service request cannot be served (the platform answers *invalid request*).

    Attributes:
        parameter: Which input is at fault (``"challenge"``, ``"pin_block"``...).
        reason: What is wrong with it; never the value.
    """

    def __init__(self, parameter: str, reason: str) -> None:
        """Record the parameter and the reason."""
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


def parse_algorithm(name: str) -> CardAlgorithm:
    """The card algorithm of a request's ``algorithm`` field (``SM4`` or ``3DES``).

    Raises:
        KeyServiceError: Neither.
    """
    found = _ALGORITHMS.get(name.upper())
    if found is None:
        raise KeyServiceError("algorithm", "must be SM4 or 3DES")
    return found


def pin_block_account(social_security_number: str) -> str:
    """The account number a PIN block for this holder is bound to (ISO 9564 "PAN").

    The first 17 characters of the social security number are digits and its
    last is a check character (possibly ``X``); the account number is those 17
    digits followed by ``0`` in the check position, which formats 0 and 3 skip.

    Raises:
        KeyServiceError: Not an 18-character social security number.
    """
    body = social_security_number[: _SSN_LENGTH - 1]
    if len(social_security_number) != _SSN_LENGTH or not (body.isascii() and body.isdigit()):
        raise KeyServiceError("social_security_number", "must be 17 digits and a check character")
    return body + "0"


@dataclass(frozen=True, slots=True)
class CardKeyRef:
    """Which card keys: the card identification code, the algorithm, the key version.

    Attributes:
        card_id_code: AAZ501, 32 hex digits (the first 6 are the issuing region).
        algorithm: ``"sm4"`` (3rd generation) or ``"3des"`` (2nd).
        key_version: The card key version (the software service knows version 1).
    """

    card_id_code: str
    algorithm: CardAlgorithm = "sm4"
    key_version: int = 1

    @property
    def province(self) -> str:
        """The issuing province code (the region's first two digits, then zeros)."""
        return self.card_id_code[:2] + "0000"


class KeyService(Protocol):
    """What the platform's key service computes from a card's challenge.

    Every method raises :class:`KeyServiceError` for a request it cannot serve.
    """

    def external_authenticate(self, card: CardKeyRef, challenge: bytes) -> bytes:
        """The EXTERNAL AUTHENTICATE cryptogram for this card and challenge."""
        ...

    def protect_command(self, card: CardKeyRef, command: bytes, challenge: bytes) -> bytes:
        """``command`` (header and data, no Lc) as a full APDU with its MAC."""
        ...

    def pin_reset_command(
        self, card: CardKeyRef, pin_block: bytes, pin_format: int, account: str, challenge: bytes
    ) -> bytes:
        """The PIN reset APDU from a PIN block under the zone PIN key."""
        ...

    def unlock_command(self, card: CardKeyRef, challenge: bytes) -> bytes:
        """The unlock APDU."""
        ...


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _pin_from_block(clear: bytes, pin_format: int, account: str) -> str:
    """The PIN inside a clear 16-byte ISO 9564 format 0/3 block (SM4 layout).

    Raises:
        KeyServiceError: The block does not hold a PIN of that format for that account.
    """
    pan_field = bytes.fromhex("0" * 20 + account[-_PAN_DIGITS - 1 : -1])
    nibbles = _xor(clear, pan_field).hex().upper()
    length = int(nibbles[1], 16)
    fill = nibbles[2 + length :] if _MIN_PIN <= length <= _MAX_PIN else ""
    digits = nibbles[2 : 2 + length]
    fill_ok = set(fill) <= ({"F"} if pin_format == _FORMAT_0 else set("ABCDEF"))
    if nibbles[0] != str(pin_format) or not fill or not fill_ok or not digits.isdigit():
        raise KeyServiceError("pin_block", "does not decode under the zone PIN key")
    return digits


@dataclass(frozen=True, slots=True)
class SoftwareKeyService:
    """A key service with the master keys in memory.

    Attributes:
        masters: Master keys by issuing province code; a province not listed
            uses ``default``.
        default: Master keys of any other province (the card simulator's demo
            keys unless given; ``None``: unknown provinces are refused).
        zone_pin_key: The SM4 zone PIN key PIN blocks arrive under.
    """

    masters: Mapping[str, CardMasterKeys] = field(default_factory=dict, repr=False)
    default: CardMasterKeys | None = field(default=DEMO_MASTER_KEYS, repr=False)
    zone_pin_key: bytes = field(default=DEMO_ZONE_PIN_KEY, repr=False)

    def __post_init__(self) -> None:
        """Check the zone PIN key's length."""
        if len(self.zone_pin_key) != SM4_KEY_SIZE:
            raise KeyServiceError("zone_pin_key", f"must be {SM4_KEY_SIZE} bytes")

    def card_key(self, card: CardKeyRef, purpose: CardKeyPurpose) -> bytes:
        """The diversified card key for ``purpose`` (what the card holds).

        Raises:
            KeyServiceError: Unknown province or key version, bad card identification code.
        """
        masters = self.masters.get(card.province, self.default)
        if masters is None:
            raise KeyServiceError("card_id_code", "no master keys for the issuing province")
        if card.key_version != 1:
            raise KeyServiceError("key_version", "unknown card key version")
        if len(card.card_id_code) != _CARD_ID_HEX:
            raise KeyServiceError("card_id_code", f"must be {_CARD_ID_HEX} hex digits")
        try:
            return diversify_key(getattr(masters, purpose.value), card.card_id_code, card.algorithm)
        except CardCryptoError as exc:
            raise KeyServiceError(exc.parameter, exc.reason) from None

    def external_authenticate(self, card: CardKeyRef, challenge: bytes) -> bytes:
        """The 8-byte cryptogram (:func:`security.cardcrypto.external_auth_cryptogram`)."""
        key = self.card_key(card, CardKeyPurpose.EXTERNAL_AUTH)
        try:
            return external_auth_cryptogram(key, challenge, card.algorithm)
        except CardCryptoError as exc:
            raise KeyServiceError(exc.parameter, exc.reason) from None

    def _secure(self, card: CardKeyRef, command: CommandApdu, challenge: bytes) -> bytes:
        purpose = _PURPOSES.get((command.cla, command.ins, command.p1)) or _PURPOSES.get(
            (command.cla, command.ins, None)
        )
        if purpose is None:
            raise KeyServiceError("command", "no card key protects this command")
        header = (command.cla, command.ins, command.p1, command.p2)
        try:
            mac = mac_command(
                self.card_key(card, purpose), challenge, header, command.data, card.algorithm
            )
        except CardCryptoError as exc:
            raise KeyServiceError(exc.parameter, exc.reason) from None
        return CommandApdu(*header, command.data + mac).to_bytes()

    def protect_command(self, card: CardKeyRef, command: bytes, challenge: bytes) -> bytes:
        """Insert ``Lc`` (data + MAC) and append the MAC under the command's purpose key."""
        if len(command) < _HEADER_SIZE or len(command) - _HEADER_SIZE > _MAX_DATA:
            raise KeyServiceError("command", "must be a 4-byte header and at most 251 data bytes")
        cla, ins, p1, p2 = command[:_HEADER_SIZE]
        return self._secure(card, CommandApdu(cla, ins, p1, p2, command[_HEADER_SIZE:]), challenge)

    def pin_reset_command(
        self, card: CardKeyRef, pin_block: bytes, pin_format: int, account: str, challenge: bytes
    ) -> bytes:
        """Take the new PIN out of the PIN block, encipher it for the card, MAC the command."""
        if len(pin_block) != SM4_BLOCK_SIZE or pin_format not in {_FORMAT_0, _FORMAT_3}:
            raise KeyServiceError("pin_block", "must be one 16-byte SM4 block, format 0 or 3")
        if len(account) <= _PAN_DIGITS or not account.isdigit():
            raise KeyServiceError("account", "must be at least 13 digits")
        pin = _pin_from_block(sm4_ecb_decrypt(self.zone_pin_key, pin_block), pin_format, account)
        key = self.card_key(card, CardKeyPurpose.PIN_RESET)
        try:
            enciphered = encipher_pin(key, pin, card.algorithm)
            unsigned = pin_reset(enciphered, bytes(_MAC_SIZE))
        except (CardCryptoError, SscardEncodeError):
            raise KeyServiceError("pin_block", "does not hold a usable PIN") from None
        return self._secure(card, CommandApdu(*_strip_mac(unsigned)), challenge)

    def unlock_command(self, card: CardKeyRef, challenge: bytes) -> bytes:
        """``84 24 00 00 04 MAC``."""
        unsigned = pin_unlock(bytes(_MAC_SIZE))
        return self._secure(card, CommandApdu(*_strip_mac(unsigned)), challenge)


def _strip_mac(command: CommandApdu) -> tuple[int, int, int, int, bytes]:
    """The fields of a secured command built with a placeholder MAC, without it."""
    return command.cla, command.ins, command.p1, command.p2, command.data[:-_MAC_SIZE]

"""Card-key cryptography of the social-security application (一卡一密), pure functions.

Both the card simulator and the platform's key service compute with these, so
the two sides agree byte for byte. Where the public material is silent, the
construction below is ours, chosen after PBOC/EMV practice and documented in
docs/protocols/sscard.md:

* **Card keys** are 16 bytes: SM4 keys on third-generation cards, two-key
  3DES keys (``KL || KR``) on second-generation ones. Each purpose
  (:class:`CardKeyPurpose`) has its own master key in the key service.
* **Diversification** from a master key ``MK`` and the card identification
  code (AAZ501, 16 bytes): ``D`` = its rightmost 8 bytes, ``D'`` = ``D`` XOR
  ``FF..FF``.
  SM4: ``K = SM4-ECB(MK, D || D')``. 3DES: ``K = 3DES-ECB(MK, D) || 3DES-ECB(MK, D')``.
* **EXTERNAL AUTHENTICATE cryptogram** over the card's 8-byte challenge ``R``:
  SM4: the first 8 bytes of ``SM4-ECB(K, R || 00*8)``; 3DES: ``3DES-ECB(K, R)``.
* **Command MAC** (4 bytes) over ``CLA INS P1 P2 Lc data`` (Lc counts the
  MAC), padded with ISO/IEC 9797-1 method 2, the challenge as initial vector:
  SM4: CBC-MAC (9797-1 algorithm 1), IV = ``R || 00*8``;
  3DES: 9797-1 algorithm 3 ("retail MAC": single DES with ``KL`` over the
  chain, the last block 3DES), IV = ``R``. The first 4 bytes are the MAC.
* **Enciphered PIN** (PIN reset): ``L || PIN`` (``L`` = number of digits, PIN as
  F-padded BCD), padded with 9797-1 method 2 to whole blocks, ECB with the
  PIN-reset key.

Nothing here logs, and no error message or ``repr`` holds key or PIN bytes.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from protocols.sscard import (
    CHALLENGE_SIZE,
    MAC_SIZE,
    CardAlgorithm,
    SscardEncodeError,
    decode_pin,
    encode_pin,
    mac_input,
)
from security.errors import SecurityError
from security.sm4 import (
    iso9797_m2_pad,
    iso9797_m2_unpad,
    sm4_card_mac,
    sm4_ecb_decrypt,
    sm4_ecb_encrypt,
)

if TYPE_CHECKING:
    from protocols.apdu import CommandApdu

__all__ = [
    "CARD_KEY_SIZE",
    "CardCryptoError",
    "CardKeyPurpose",
    "CardKeys",
    "CardMasterKeys",
    "command_mac",
    "decipher_pin",
    "derive_card_keys",
    "diversification_data",
    "diversify_key",
    "encipher_pin",
    "external_auth_cryptogram",
    "mac_command",
    "verify_command_mac",
]

#: Card key length in bytes (SM4, or two-key 3DES KL || KR).
CARD_KEY_SIZE: Final = 16
_DES_BLOCK: Final = 8
_SM4_BLOCK: Final = 16
_CARD_ID_SIZE: Final = 16


class CardCryptoError(SecurityError):
    """A card-crypto input is unusable (wrong length, not a PIN, bad padding).

    Attributes:
        parameter: Which input (``"key"``, ``"challenge"``, ``"card_id_code"``...).
        reason: What is wrong with it; never the value.
    """

    def __init__(self, parameter: str, reason: str) -> None:
        """Record the parameter and the reason."""
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


class CardKeyPurpose(enum.StrEnum):
    """What a card key is for; each purpose has its own master key."""

    #: EXTERNAL AUTHENTICATE before UPDATE RECORD (key id 01).
    EXTERNAL_AUTH = "external_auth"
    #: PIN reset ``84 24 00 01``: enciphers the new PIN and MACs the command.
    PIN_RESET = "pin_reset"
    #: PIN unlock ``84 24 00 00``.
    PIN_UNLOCK = "pin_unlock"
    #: APPLICATION BLOCK / UNBLOCK.
    APP_MAINTENANCE = "app_maintenance"


@dataclass(frozen=True, slots=True)
class CardKeys:
    """One card's diversified keys (the ``repr`` hides them).

    Attributes:
        external_auth: External authentication key.
        pin_reset: PIN reset key.
        pin_unlock: PIN unlock key.
        app_maintenance: Application block/unblock key.
    """

    external_auth: bytes = field(repr=False)
    pin_reset: bytes = field(repr=False)
    pin_unlock: bytes = field(repr=False)
    app_maintenance: bytes = field(repr=False)

    def for_purpose(self, purpose: CardKeyPurpose) -> bytes:
        """The key for ``purpose``."""
        key: bytes = getattr(self, purpose.value)
        return key


@dataclass(frozen=True, slots=True)
class CardMasterKeys:
    """The issuer's master keys, one per purpose (held by the key service).

    Attributes:
        external_auth: Master of the external authentication keys.
        pin_reset: Master of the PIN reset keys.
        pin_unlock: Master of the PIN unlock keys.
        app_maintenance: Master of the application maintenance keys.
    """

    external_auth: bytes = field(repr=False)
    pin_reset: bytes = field(repr=False)
    pin_unlock: bytes = field(repr=False)
    app_maintenance: bytes = field(repr=False)


def _check_key(key: bytes) -> None:
    if len(key) != CARD_KEY_SIZE:
        raise CardCryptoError("key", f"must be {CARD_KEY_SIZE} bytes")


def _check_challenge(challenge: bytes) -> None:
    if len(challenge) not in {4, CHALLENGE_SIZE}:
        raise CardCryptoError("challenge", "must be 4 or 8 bytes")


def _tdes(key: bytes) -> TripleDES:
    return TripleDES(key + key[:_DES_BLOCK])  # K1 K2 K1: two-key 3DES


def _des(key: bytes) -> TripleDES:
    return TripleDES(key[:_DES_BLOCK] * 3)  # single DES as K K K


def _ecb_encrypt(key: bytes, data: bytes, algorithm: CardAlgorithm) -> bytes:
    if algorithm == "sm4":
        return sm4_ecb_encrypt(key, data)
    encryptor = Cipher(_tdes(key), modes.ECB()).encryptor()  # noqa: S305 - card spec
    return encryptor.update(data) + encryptor.finalize()


def _ecb_decrypt(key: bytes, data: bytes, algorithm: CardAlgorithm) -> bytes:
    if algorithm == "sm4":
        return sm4_ecb_decrypt(key, data)
    decryptor = Cipher(_tdes(key), modes.ECB()).decryptor()  # noqa: S305 - card spec
    return decryptor.update(data) + decryptor.finalize()


def diversification_data(card_id_code: str) -> bytes:
    """``D``: the rightmost 8 bytes of the card identification code (32 hex digits).

    Raises:
        CardCryptoError: The code is not 32 hex digits.
    """
    try:
        raw = bytes.fromhex(card_id_code)
    except ValueError:
        raise CardCryptoError("card_id_code", "must be hex digits") from None
    if len(raw) != _CARD_ID_SIZE:
        raise CardCryptoError("card_id_code", f"must be {_CARD_ID_SIZE} bytes")
    return raw[-_DES_BLOCK:]


def diversify_key(master_key: bytes, card_id_code: str, algorithm: CardAlgorithm) -> bytes:
    """Diversify a card key from a master key and the card identification code.

    Raises:
        CardCryptoError: Wrong key length or card identification code.
    """
    _check_key(master_key)
    data = diversification_data(card_id_code)
    inverted = bytes(b ^ 0xFF for b in data)
    if algorithm == "sm4":
        return sm4_ecb_encrypt(master_key, data + inverted)
    return _ecb_encrypt(master_key, data, "3des") + _ecb_encrypt(master_key, inverted, "3des")


def derive_card_keys(
    masters: CardMasterKeys, card_id_code: str, algorithm: CardAlgorithm
) -> CardKeys:
    """Diversify every card key of one card.

    Raises:
        CardCryptoError: Wrong key length or card identification code.
    """
    return CardKeys(
        **{
            purpose.value: diversify_key(getattr(masters, purpose.value), card_id_code, algorithm)
            for purpose in CardKeyPurpose
        }
    )


def external_auth_cryptogram(card_key: bytes, challenge: bytes, algorithm: CardAlgorithm) -> bytes:
    """The 8-byte EXTERNAL AUTHENTICATE cryptogram over the card's 8-byte challenge.

    Raises:
        CardCryptoError: Wrong key or challenge length.
    """
    _check_key(card_key)
    if len(challenge) != CHALLENGE_SIZE:
        raise CardCryptoError("challenge", f"must be {CHALLENGE_SIZE} bytes")
    if algorithm == "sm4":
        return sm4_ecb_encrypt(card_key, challenge.ljust(_SM4_BLOCK, b"\x00"))[:CHALLENGE_SIZE]
    return _ecb_encrypt(card_key, challenge, "3des")


def _retail_mac(key: bytes, data: bytes, iv: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 over whole 8-byte blocks."""
    chain = iv
    blocks = [data[i : i + _DES_BLOCK] for i in range(0, len(data), _DES_BLOCK)]
    if len(blocks) > 1:
        encryptor = Cipher(_des(key), modes.CBC(iv)).encryptor()
        chain = (encryptor.update(b"".join(blocks[:-1])) + encryptor.finalize())[-_DES_BLOCK:]
    last = bytes(a ^ b for a, b in zip(blocks[-1], chain, strict=True))
    return _ecb_encrypt(key, last, "3des")


def command_mac(key: bytes, challenge: bytes, data: bytes, algorithm: CardAlgorithm) -> bytes:
    """The 4-byte MAC of ``data`` under ``key`` with the card challenge as IV.

    Raises:
        CardCryptoError: Wrong key or challenge length.
    """
    _check_key(key)
    _check_challenge(challenge)
    if algorithm == "sm4":
        return sm4_card_mac(key, data, challenge)
    iv = challenge.ljust(_DES_BLOCK, b"\x00")
    return _retail_mac(key, iso9797_m2_pad(data, _DES_BLOCK), iv)[:MAC_SIZE]


def mac_command(
    key: bytes,
    challenge: bytes,
    header: tuple[int, int, int, int],
    data: bytes,
    algorithm: CardAlgorithm,
) -> bytes:
    """The MAC of a secured command ``header`` (CLA, INS, P1, P2) carrying ``data``.

    Raises:
        CardCryptoError: Wrong key or challenge length.
    """
    return command_mac(key, challenge, mac_input(*header, data), algorithm)


def verify_command_mac(
    key: bytes, challenge: bytes, command: CommandApdu, algorithm: CardAlgorithm
) -> bool:
    """Check the MAC that ends a secured command's data (constant time).

    Raises:
        CardCryptoError: Wrong key or challenge length.
    """
    if len(command.data) < MAC_SIZE:
        return False
    payload, mac = command.data[:-MAC_SIZE], command.data[-MAC_SIZE:]
    header = (command.cla, command.ins, command.p1, command.p2)
    return hmac.compare_digest(mac, mac_command(key, challenge, header, payload, algorithm))


def _block(algorithm: CardAlgorithm) -> int:
    return _SM4_BLOCK if algorithm == "sm4" else _DES_BLOCK


def encipher_pin(key: bytes, pin: str, algorithm: CardAlgorithm) -> bytes:
    """Encipher a new PIN for PIN reset: ECB of padded ``L || BCD PIN``.

    Raises:
        CardCryptoError: Wrong key length, or the PIN is not 4 to 12 digits.
    """
    _check_key(key)
    try:
        packed = encode_pin(pin)
    except SscardEncodeError:
        raise CardCryptoError("pin", "must be 4..12 digits") from None
    plain = iso9797_m2_pad(bytes((len(pin),)) + packed, _block(algorithm))
    return _ecb_encrypt(key, plain, algorithm)


def decipher_pin(key: bytes, data: bytes, algorithm: CardAlgorithm) -> str:
    """Recover the PIN that :func:`encipher_pin` enciphered (the card's side).

    Raises:
        CardCryptoError: Wrong key length, not whole blocks, or not a PIN inside.
    """
    _check_key(key)
    if not data or len(data) % _block(algorithm):
        raise CardCryptoError("data", "must be whole blocks")
    plain = _ecb_decrypt(key, data, algorithm)
    try:
        body = iso9797_m2_unpad(plain)
    except ValueError:
        raise CardCryptoError("data", "bad padding") from None
    pin = decode_pin(body[1:]) if body else None
    if pin is None or len(pin) != body[0]:
        raise CardCryptoError("data", "no PIN inside")
    return pin

"""The social-security application's commands as :class:`~protocols.apdu.CommandApdu`.

::

    command                 CLA INS P1 P2  data                         Le
    ----------------------  --- --- -- --  ---------------------------  ----
    SELECT application      00  A4  04 00  AID "sx1.sh.社会保障" (GBK)   -
    SELECT EF               00  A4  02 00  EF05 | EF06                  -
    READ RECORD             00  B2  rr 2C  - (EF05, SFI 5)              00
                            00  B2  rr 34  - (EF06, SFI 6)              00
    UPDATE RECORD           00  DC  rr 04  TLV (current EF)             -
    GET CHALLENGE           00  84  00 00  -                            08
    EXTERNAL AUTHENTICATE   00  82  00 kk  8-byte cryptogram            -
    VERIFY                  00  20  00 00  PIN (BCD, F-padded)          -
    VERIFY (tries left)     00  20  00 00  - (answers 63Cx / 6983)      -
    CHANGE PIN              80  5E  01 00  old PIN || FF || new PIN     -
    PIN RESET (reload)      84  24  00 01  enciphered new PIN || MAC4   -
    PIN UNLOCK              84  24  00 00  MAC4                         -
    APPLICATION BLOCK       84  1E  00 00  MAC4                         -
    APPLICATION UNBLOCK     84  18  00 00  MAC4                         -

Secured commands (CLA ``84``) carry a 4-byte MAC over :func:`mac_input`; the
MAC and the enciphered PIN are made by :mod:`security.cardcrypto` with the
card-diversified key and the card's last GET CHALLENGE.
"""

from __future__ import annotations

from typing import Final

from protocols.apdu import CommandApdu
from protocols.sscard.errors import SscardEncodeError
from protocols.sscard.records import SFI_EF05, SFI_EF06

__all__ = [
    "AID",
    "CHALLENGE_SIZE",
    "CLA_PROPRIETARY",
    "CLA_SECURED",
    "CRYPTOGRAM_SIZE",
    "DEFAULT_PIN",
    "FID_EF05",
    "FID_EF06",
    "INS_APPLICATION_BLOCK",
    "INS_APPLICATION_UNBLOCK",
    "INS_CHANGE_PIN",
    "INS_EXTERNAL_AUTHENTICATE",
    "INS_GET_CHALLENGE",
    "INS_PIN_RESET",
    "INS_READ_RECORD",
    "INS_SELECT",
    "INS_UPDATE_RECORD",
    "INS_VERIFY",
    "KEY_ID_EXTERNAL_AUTH",
    "MAC_SIZE",
    "P1_PIN_RESET",
    "P1_PIN_UNLOCK",
    "application_block",
    "application_unblock",
    "change_pin",
    "decode_pin",
    "encode_pin",
    "external_authenticate",
    "get_challenge",
    "mac_input",
    "pin_reset",
    "pin_unlock",
    "read_record",
    "select_application",
    "select_file",
    "update_record",
    "verify",
    "verify_status",
]

#: Application name of the social-security application: "sx1.sh.社会保障" in GBK.
AID: Final = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")
#: File identifiers for SELECT EF.
FID_EF05: Final = 0xEF05
FID_EF06: Final = 0xEF06
#: Initial PIN of every issued card; refused for transactions and as a new PIN.
DEFAULT_PIN: Final = "123456"
#: Bytes of the card challenge (``00 84 00 00 08``).
CHALLENGE_SIZE: Final = 8
#: Bytes of the EXTERNAL AUTHENTICATE cryptogram.
CRYPTOGRAM_SIZE: Final = 8
#: Bytes of a command MAC.
MAC_SIZE: Final = 4
#: Key id (P2) of the external authentication key.
KEY_ID_EXTERNAL_AUTH: Final = 0x01
CLA_PROPRIETARY: Final = 0x80
CLA_SECURED: Final = 0x84
INS_SELECT: Final = 0xA4
INS_READ_RECORD: Final = 0xB2
INS_UPDATE_RECORD: Final = 0xDC
INS_GET_CHALLENGE: Final = 0x84
INS_EXTERNAL_AUTHENTICATE: Final = 0x82
INS_VERIFY: Final = 0x20
INS_CHANGE_PIN: Final = 0x5E
INS_PIN_RESET: Final = 0x24
INS_APPLICATION_BLOCK: Final = 0x1E
INS_APPLICATION_UNBLOCK: Final = 0x18
#: P1 of ``84 24``: reload (reset) the PIN, or only unlock it.
P1_PIN_RESET: Final = 0x01
P1_PIN_UNLOCK: Final = 0x00
_PIN_MIN: Final = 4
_PIN_MAX: Final = 12
_CURRENT_EF: Final = 0x04


def encode_pin(pin: str) -> bytes:
    """Pack a PIN as BCD, padded with ``F`` to whole bytes (``"123456"`` → ``12 34 56``).

    Raises:
        SscardEncodeError: The PIN is not 4 to 12 decimal digits.
    """
    if not (pin.isascii() and pin.isdigit() and _PIN_MIN <= len(pin) <= _PIN_MAX):
        raise SscardEncodeError("pin", f"must be {_PIN_MIN}..{_PIN_MAX} digits")
    return bytes.fromhex(pin + "F" * (len(pin) % 2))


def decode_pin(data: bytes) -> str | None:
    """Unpack a BCD PIN; ``None`` when the bytes are not a valid PIN."""
    text = data.hex().upper()
    text = text.removesuffix("F")
    if not (text.isdigit() and _PIN_MIN <= len(text) <= _PIN_MAX):
        return None
    return text


def select_application() -> CommandApdu:
    """SELECT the social-security application by name."""
    return CommandApdu(0x00, INS_SELECT, 0x04, 0x00, AID)


def select_file(fid: int) -> CommandApdu:
    """SELECT an elementary file by identifier (``EF05`` or ``EF06``)."""
    return CommandApdu(0x00, INS_SELECT, 0x02, 0x00, fid.to_bytes(2, "big"))


def read_record(sfi: int, record: int, le: int = 256) -> CommandApdu:
    """READ RECORD ``record`` of the file with short identifier ``sfi`` (5 or 6).

    Raises:
        SscardEncodeError: The SFI or record number is out of range.
    """
    if sfi not in {SFI_EF05, SFI_EF06}:
        raise SscardEncodeError("sfi", "must be 5 (EF05) or 6 (EF06)")
    if not 1 <= record <= 0xFE:  # noqa: PLR2004 - record numbers 01..FE
        raise SscardEncodeError("record", "must be 1..254")
    return CommandApdu(0x00, INS_READ_RECORD, record, (sfi << 3) | 0x04, le=le)


def update_record(record: int, tlv: bytes, sfi: int | None = None) -> CommandApdu:
    """UPDATE RECORD ``record`` of the current EF (P2 ``04``) or of ``sfi``.

    Raises:
        SscardEncodeError: The record number or data is out of range.
    """
    if not 1 <= record <= 0xFE:  # noqa: PLR2004 - record numbers 01..FE
        raise SscardEncodeError("record", "must be 1..254")
    if not 1 <= len(tlv) <= 0xFF:  # noqa: PLR2004 - short APDU
        raise SscardEncodeError("tlv", "must be 1..255 bytes")
    p2 = _CURRENT_EF if sfi is None else (sfi << 3) | 0x04
    return CommandApdu(0x00, INS_UPDATE_RECORD, record, p2, tlv)


def get_challenge(length: int = CHALLENGE_SIZE) -> CommandApdu:
    """GET CHALLENGE of ``length`` bytes (4 or 8)."""
    if length not in {4, CHALLENGE_SIZE}:
        raise SscardEncodeError("length", "must be 4 or 8")
    return CommandApdu(0x00, INS_GET_CHALLENGE, 0x00, 0x00, le=length)


def external_authenticate(cryptogram: bytes, key_id: int = KEY_ID_EXTERNAL_AUTH) -> CommandApdu:
    """EXTERNAL AUTHENTICATE with the key service's cryptogram.

    Raises:
        SscardEncodeError: The cryptogram is not 8 bytes or the key id not one byte.
    """
    if len(cryptogram) != CRYPTOGRAM_SIZE:
        raise SscardEncodeError("cryptogram", f"must be {CRYPTOGRAM_SIZE} bytes")
    if not 0 <= key_id <= 0xFF:  # noqa: PLR2004 - one byte
        raise SscardEncodeError("key_id", "must be 0..255")
    return CommandApdu(0x00, INS_EXTERNAL_AUTHENTICATE, 0x00, key_id, cryptogram)


def verify(pin: str) -> CommandApdu:
    """VERIFY the holder's PIN.

    Raises:
        SscardEncodeError: The PIN is not 4 to 12 digits.
    """
    return CommandApdu(0x00, INS_VERIFY, 0x00, 0x00, encode_pin(pin))


def verify_status() -> CommandApdu:
    """VERIFY without data (ISO/IEC 7816-4): the tries left, counting none.

    The card answers ``63Cx`` (``x`` tries left), ``6983`` when the PIN is
    locked; no try is used.
    """
    return CommandApdu(0x00, INS_VERIFY, 0x00, 0x00)


def change_pin(old: str, new: str) -> CommandApdu:
    """CHANGE PIN: ``old || FF || new``.

    Raises:
        SscardEncodeError: A PIN is not 4 to 12 digits.
    """
    return CommandApdu(
        CLA_PROPRIETARY, INS_CHANGE_PIN, 0x01, 0x00, encode_pin(old) + b"\xff" + encode_pin(new)
    )


def mac_input(cla: int, ins: int, p1: int, p2: int, data: bytes) -> bytes:
    """What a secured command's MAC covers: header, Lc (data plus MAC), data."""
    return bytes((cla, ins, p1, p2, len(data) + MAC_SIZE)) + data


def _with_mac(ins: int, p1: int, data: bytes, mac: bytes) -> CommandApdu:
    if len(mac) != MAC_SIZE:
        raise SscardEncodeError("mac", f"must be {MAC_SIZE} bytes")
    return CommandApdu(CLA_SECURED, ins, p1, 0x00, data + mac)


def pin_reset(enciphered_pin: bytes, mac: bytes) -> CommandApdu:
    """PIN reset ``84 24 00 01``: enciphered new PIN and MAC (from the key service).

    Raises:
        SscardEncodeError: The MAC is not 4 bytes or the cryptogram is empty.
    """
    if not enciphered_pin or len(enciphered_pin) % 8:
        raise SscardEncodeError("enciphered_pin", "must be whole 8-byte blocks")
    return _with_mac(INS_PIN_RESET, P1_PIN_RESET, enciphered_pin, mac)


def pin_unlock(mac: bytes) -> CommandApdu:
    """PIN unlock ``84 24 00 00``: refill the retry counter, keep the PIN."""
    return _with_mac(INS_PIN_RESET, P1_PIN_UNLOCK, b"", mac)


def application_block(mac: bytes) -> CommandApdu:
    """APPLICATION BLOCK ``84 1E 00 00``."""
    return _with_mac(INS_APPLICATION_BLOCK, 0x00, b"", mac)


def application_unblock(mac: bytes) -> CommandApdu:
    """APPLICATION UNBLOCK ``84 18 00 00``."""
    return _with_mac(INS_APPLICATION_UNBLOCK, 0x00, b"", mac)

"""SM4 block helpers for the card: ECB and CBC-MAC (GB/T 32907).

Third-generation social security cards use SM4 for EXTERNAL AUTHENTICATE
cryptograms, enciphered PIN data and secure-messaging MACs. The key service
(加密机) normally computes these; the helpers here serve the card simulator,
the tests, and a software key service. They are thin and exact: no padding is
added unless asked for, and a MAC is the full last block (the card command
takes its first 4 bytes, see :func:`sm4_card_mac`).
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from security.suites import InvalidParameterError

__all__ = [
    "SM4_BLOCK_SIZE",
    "SM4_KEY_SIZE",
    "iso9797_m2_pad",
    "iso9797_m2_unpad",
    "sm4_card_mac",
    "sm4_cbc_mac",
    "sm4_ecb_decrypt",
    "sm4_ecb_encrypt",
]

#: SM4 block length in bytes (GB/T 32907, clause 5).
SM4_BLOCK_SIZE: Final = 16
#: SM4 key length in bytes.
SM4_KEY_SIZE: Final = 16
#: Length of the MAC a card command carries (LD/T 32.5: 4-byte MAC).
CARD_MAC_SIZE: Final = 4


def _check(key: bytes, data: bytes, name: str = "data") -> None:
    if len(key) != SM4_KEY_SIZE:
        raise InvalidParameterError("key", SM4_KEY_SIZE, len(key))
    if len(data) % SM4_BLOCK_SIZE:
        padded = len(data) + SM4_BLOCK_SIZE - len(data) % SM4_BLOCK_SIZE
        raise InvalidParameterError(name, padded, len(data))


def iso9797_m2_pad(data: bytes, block_size: int = SM4_BLOCK_SIZE) -> bytes:
    """Pad with ISO/IEC 9797-1 method 2: ``80`` then zeros up to a whole block."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % block_size)


def iso9797_m2_unpad(data: bytes) -> bytes:
    """Remove ISO/IEC 9797-1 method 2 padding.

    Raises:
        ValueError: The data does not end in ``80`` followed by zeros.
    """
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise ValueError("no ISO 9797-1 method 2 padding")
    return stripped[:-1]


def sm4_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """Encrypt whole blocks with SM4 in ECB mode (no padding).

    Raises:
        InvalidParameterError: The key is not 16 bytes or the data is not whole blocks.
    """
    _check(key, data)
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()  # noqa: S305 - card spec
    return encryptor.update(data) + encryptor.finalize()


def sm4_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    """Decrypt whole blocks with SM4 in ECB mode (no padding removed).

    Raises:
        InvalidParameterError: The key is not 16 bytes or the data is not whole blocks.
    """
    _check(key, data)
    decryptor = Cipher(algorithms.SM4(key), modes.ECB()).decryptor()  # noqa: S305 - card spec
    return decryptor.update(data) + decryptor.finalize()


def sm4_cbc_mac(key: bytes, data: bytes, iv: bytes = bytes(SM4_BLOCK_SIZE)) -> bytes:
    """SM4 CBC-MAC (ISO/IEC 9797-1 algorithm 1) of whole blocks: the last CBC block.

    Pad first (:func:`iso9797_m2_pad`) when the data is not whole blocks; the
    card's secure messaging uses the 8- or 16-byte challenge as ``iv``.

    Raises:
        InvalidParameterError: Wrong key or IV length, or data not whole blocks.
    """
    _check(key, data)
    if len(iv) != SM4_BLOCK_SIZE:
        raise InvalidParameterError("iv", SM4_BLOCK_SIZE, len(iv))
    if not data:
        raise InvalidParameterError("data", SM4_BLOCK_SIZE, 0)
    encryptor = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
    return (encryptor.update(data) + encryptor.finalize())[-SM4_BLOCK_SIZE:]


def sm4_card_mac(key: bytes, data: bytes, challenge: bytes) -> bytes:
    """The 4-byte MAC a card command carries: pad, CBC-MAC, keep the first 4 bytes.

    ``challenge`` (GET CHALLENGE answer, 4 or 8 bytes) is right-padded with
    zeros to one block and used as the initial vector.
    """
    iv = challenge.ljust(SM4_BLOCK_SIZE, b"\x00")
    return sm4_cbc_mac(key, iso9797_m2_pad(data), iv)[:CARD_MAC_SIZE]

"""SM4 card helpers: ECB, CBC-MAC and the 4-byte card MAC."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from security.sm4 import (
    iso9797_m2_pad,
    iso9797_m2_unpad,
    sm4_card_mac,
    sm4_cbc_mac,
    sm4_ecb_decrypt,
    sm4_ecb_encrypt,
)
from security.suites import InvalidParameterError

# GB/T 32907-2016 Appendix A, example 1.
KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
CIPHER = bytes.fromhex("681edf34d206965e86b3e94f536e4246")


def test_ecb_gbt32907_vector() -> None:
    """ECB encrypts the standard's example and decrypts it back."""
    assert sm4_ecb_encrypt(KEY, KEY) == CIPHER
    assert sm4_ecb_decrypt(KEY, CIPHER) == KEY


def test_ecb_blocks_are_independent() -> None:
    """Two equal blocks encrypt to two equal blocks (plain ECB, no chaining)."""
    assert sm4_ecb_encrypt(KEY, KEY * 2) == CIPHER * 2


def test_cbc_mac_of_one_block_with_zero_iv_is_ecb() -> None:
    """CBC-MAC of a single block under a zero IV is that block's encryption."""
    assert sm4_cbc_mac(KEY, KEY) == CIPHER


def test_cbc_mac_chains_like_cbc() -> None:
    """CBC-MAC equals the last block of SM4-CBC over the same data and IV."""
    data, iv = bytes(range(48)), bytes(range(16, 32))
    encryptor = Cipher(algorithms.SM4(KEY), modes.CBC(iv)).encryptor()
    expected = (encryptor.update(data) + encryptor.finalize())[-16:]
    assert sm4_cbc_mac(KEY, data, iv) == expected
    manual = iv
    for start in range(0, 48, 16):
        block = bytes(a ^ b for a, b in zip(manual, data[start : start + 16], strict=True))
        manual = sm4_ecb_encrypt(KEY, block)
    assert manual == expected


@pytest.mark.parametrize(
    ("data", "padded"),
    [
        (b"", "80" + "00" * 15),
        (b"\x01" * 15, "01" * 15 + "80"),
        (b"\x01" * 16, "01" * 16 + "80" + "00" * 15),
    ],
)
def test_iso9797_method2_padding(data: bytes, padded: str) -> None:
    """Padding appends 80 and zeros to a whole block, and unpads back."""
    assert iso9797_m2_pad(data).hex() == padded
    assert iso9797_m2_unpad(bytes.fromhex(padded)) == data


def test_unpad_refuses_missing_marker() -> None:
    """Data without the 80 marker is not padded."""
    with pytest.raises(ValueError, match="padding"):
        iso9797_m2_unpad(bytes(16))


def test_card_mac_is_first_four_bytes_of_padded_cbc_mac() -> None:
    """The card MAC pads, uses the zero-extended challenge as IV, and keeps 4 bytes."""
    command = bytes.fromhex("8424000104")
    challenge = bytes.fromhex("1122334455667788")
    mac = sm4_card_mac(KEY, command, challenge)
    assert len(mac) == 4
    full = sm4_cbc_mac(KEY, iso9797_m2_pad(command), challenge + bytes(8))
    assert mac == full[:4]


@pytest.mark.parametrize(
    ("key", "data", "parameter"),
    [(KEY[:15], KEY, "key"), (KEY, KEY[:15], "data"), (KEY, b"", "data")],
    ids=["short-key", "partial-block", "empty"],
)
def test_wrong_lengths_are_refused(key: bytes, data: bytes, parameter: str) -> None:
    """Short keys and partial blocks raise InvalidParameterError naming the parameter."""
    with pytest.raises(InvalidParameterError) as info:
        sm4_cbc_mac(key, data)
    assert info.value.parameter == parameter
    if data:
        with pytest.raises(InvalidParameterError):
            sm4_ecb_encrypt(key, data)


def test_wrong_iv_length_is_refused() -> None:
    """A CBC-MAC IV must be one block."""
    with pytest.raises(InvalidParameterError) as info:
        sm4_cbc_mac(KEY, KEY, bytes(8))
    assert info.value.parameter == "iv"

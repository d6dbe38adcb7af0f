"""PIN blocks inside the key store (both backends) and the opaque EncryptedPinBlock."""

from __future__ import annotations

import copy
import json
import pickle
from typing import TYPE_CHECKING

import pytest

from security.keystore import (
    Algorithm,
    EncryptedPinBlock,
    KeyStore,
    KeyUsage,
    KeyUsageError,
    PinBlockError,
    PinBlockFormat,
    UnsupportedAlgorithmError,
)

if TYPE_CHECKING:
    from tests.security.conftest import KeyStoreFactory

PAN = "6217001234567890123"
TPK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
ZPK = bytes.fromhex("89ABCDEF0123456776543210FEDCBA98")


def _pin_keys(store: KeyStore) -> None:
    store.import_key("tpk", Algorithm.TDES_2KEY, KeyUsage.PIN, TPK)
    store.import_key("zpk", Algorithm.TDES_2KEY, KeyUsage.PIN, ZPK)


def test_format0_3des_published_vector(keystore: KeyStore) -> None:
    """Format 0 under a 2-key 3DES key gives the published ciphertext."""
    # devindtools.com PIN block calculator walkthrough: key E8DD...D2A7, PIN 123456,
    # card 4451234567890129, encrypted PIN block ABC5E23474210DAC.
    key = bytes.fromhex("E8DD93B8AF13999C7644C0FE11F5D2A7")
    keystore.import_key("tpk", Algorithm.TDES_2KEY, KeyUsage.PIN, key)
    block = keystore.encrypt_pin_block("tpk", "123456", "4451234567890129", PinBlockFormat.ISO_0)
    assert block.ciphertext_bytes().hex().upper() == "ABC5E23474210DAC"
    assert (block.key_id, block.key_version, block.pin_block_format) == ("tpk", 1, 0)
    assert keystore.verify_pin_block(block, "4451234567890129", "123456")
    assert not keystore.verify_pin_block(block, "4451234567890129", "654321")


def test_format4_aes_published_vector(keystore: KeyStore) -> None:
    """A format 4 block from the ep2 security specification decodes to its PIN."""
    # ep2 (eft/pos 2000) Security Specification 8.0.0, 8.4 "PIN Encryption",
    # as quoted in knovichikhin/psec tests/test_pinblock.py.
    key = bytes.fromhex("C1D0F8FB4958670DBA40AB1F3752EF0D")
    keystore.import_key("zpk", Algorithm.AES_128, KeyUsage.PIN, key)
    block = EncryptedPinBlock(
        bytes.fromhex("CC17F65586BFD0953010226C4FC5B3CA"),
        key_id="zpk",
        key_version=1,
        pin_block_format=PinBlockFormat.ISO_4,
    )
    assert keystore.verify_pin_block(block, "432198765432109870", "1234")
    assert not keystore.verify_pin_block(block, "432198765432109870", "1235")


def test_format4_aes_deterministic_vector(keystore_factory: KeyStoreFactory) -> None:
    """With an injected all-FF random source, format 4 encryption matches psec's vector."""
    # knovichikhin/psec tests/test_pinblock.py test_encipher_pinblock_iso_4_det.
    store = keystore_factory(random=lambda n: b"\xff" * n)
    store.import_key(
        "zpk", Algorithm.AES_128, KeyUsage.PIN, bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    )
    block = store.encrypt_pin_block("zpk", "1234", "1234567890123456789", PinBlockFormat.ISO_4)
    assert block.ciphertext_bytes().hex().upper() == "28B41FDDD29B743E93124BD8E32D921E"


@pytest.mark.parametrize("fmt", [PinBlockFormat.ISO_0, PinBlockFormat.ISO_3])
@pytest.mark.parametrize("out_format", [PinBlockFormat.ISO_0, PinBlockFormat.ISO_3])
def test_translate_between_3des_keys(
    keystore: KeyStore, fmt: PinBlockFormat, out_format: PinBlockFormat
) -> None:
    """A terminal block translates to the zone key, in either format, keeping the PIN."""
    _pin_keys(keystore)
    block = keystore.encrypt_pin_block("tpk", "246813", PAN, fmt)
    out = keystore.translate_pin_block(block, "tpk", "zpk", PAN, out_format)
    assert (out.key_id, out.key_version, out.pin_block_format) == ("zpk", 1, out_format)
    assert out.ciphertext_bytes() != block.ciphertext_bytes()
    assert keystore.verify_pin_block(out, PAN, "246813")


def test_translate_3des_format0_to_aes_format4(keystore: KeyStore) -> None:
    """A 3DES format 0 block translates to an AES-256 zone key in format 4."""
    keystore.import_key("tpk", Algorithm.TDES_2KEY, KeyUsage.PIN, TPK)
    keystore.generate_key("zpk-aes", Algorithm.AES_256, KeyUsage.PIN)
    block = keystore.encrypt_pin_block("tpk", "9876", PAN, PinBlockFormat.ISO_0)
    out = keystore.translate_pin_block(block, "tpk", "zpk-aes", PAN, PinBlockFormat.ISO_4)
    assert len(out) == 16
    assert keystore.verify_pin_block(out, PAN, "9876")
    back = keystore.translate_pin_block(out, "zpk-aes", "tpk", PAN, PinBlockFormat.ISO_3)
    assert keystore.verify_pin_block(back, PAN, "9876")


def test_translate_to_sm4_zone_key(keystore: KeyStore) -> None:
    """Where SM4 is supported a 3DES block translates to a 16-byte SM4 block."""
    keystore.import_key("tpk", Algorithm.TDES_3KEY, KeyUsage.PIN, TPK + ZPK[:8])
    if Algorithm.SM4_128 not in keystore.supported_algorithms:
        with pytest.raises(UnsupportedAlgorithmError):
            keystore.generate_key("zpk-sm4", Algorithm.SM4_128, KeyUsage.PIN)
        return
    keystore.generate_key("zpk-sm4", Algorithm.SM4_128, KeyUsage.PIN)
    block = keystore.encrypt_pin_block("tpk", "123456789012", PAN, PinBlockFormat.ISO_3)
    out = keystore.translate_pin_block(block, "tpk", "zpk-sm4", PAN, PinBlockFormat.ISO_0)
    assert len(out) == 16
    assert keystore.verify_pin_block(out, PAN, "123456789012")


def test_old_terminal_key_version_still_translates(keystore: KeyStore) -> None:
    """After a terminal key rotation, blocks under the old version still translate."""
    _pin_keys(keystore)
    old = keystore.encrypt_pin_block("tpk", "4321", PAN, PinBlockFormat.ISO_0)
    keystore.rotate_key("tpk")
    new = keystore.encrypt_pin_block("tpk", "4321", PAN, PinBlockFormat.ISO_0)
    assert (old.key_version, new.key_version) == (1, 2)
    for block in (old, new):
        out = keystore.translate_pin_block(block, "tpk", "zpk", PAN, PinBlockFormat.ISO_0)
        assert keystore.verify_pin_block(out, PAN, "4321")


def test_translate_refusals(keystore: KeyStore) -> None:
    """Wrong source key, non-PIN target and unfit formats are KeyUsageErrors."""
    _pin_keys(keystore)
    keystore.generate_key("data", Algorithm.AES_256, KeyUsage.ENCRYPT)
    block = keystore.encrypt_pin_block("tpk", "4321", PAN, PinBlockFormat.ISO_0)
    with pytest.raises(KeyUsageError):
        keystore.translate_pin_block(block, "zpk", "zpk", PAN, PinBlockFormat.ISO_0)
    with pytest.raises(KeyUsageError):
        keystore.translate_pin_block(block, "tpk", "data", PAN, PinBlockFormat.ISO_0)
    with pytest.raises(KeyUsageError):
        keystore.translate_pin_block(block, "tpk", "zpk", PAN, PinBlockFormat.ISO_4)
    with pytest.raises(KeyUsageError):
        keystore.encrypt_pin_block("data", "4321", PAN, PinBlockFormat.ISO_4)


def test_translate_with_wrong_pan_fails_without_revealing_the_pin(keystore: KeyStore) -> None:
    """A block bound to another PAN does not decode, and the error names no digits."""
    _pin_keys(keystore)
    block = keystore.encrypt_pin_block("tpk", "4321", PAN, PinBlockFormat.ISO_0)
    with pytest.raises(PinBlockError) as caught:
        keystore.translate_pin_block(block, "tpk", "zpk", "4111111111111111", PinBlockFormat.ISO_0)
    assert "4321" not in str(caught.value)
    assert "4321" not in repr(vars(caught.value))


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12345a"])
def test_store_refuses_bad_pin_lengths(keystore: KeyStore, pin: str) -> None:
    """The store builds PIN blocks only for 4-12 digit PINs."""
    _pin_keys(keystore)
    for fmt in (PinBlockFormat.ISO_0, PinBlockFormat.ISO_3):
        with pytest.raises(PinBlockError):
            keystore.encrypt_pin_block("tpk", pin, PAN, fmt)


def test_encrypted_pin_block_never_shows_its_bytes() -> None:
    """repr, str, f-strings, format specs, JSON and pickling never reveal the ciphertext."""
    secret = bytes.fromhex("ABC5E23474210DAC")
    block = EncryptedPinBlock(
        secret, key_id="tpk", key_version=3, pin_block_format=PinBlockFormat.ISO_0
    )
    rendered = [
        repr(block),
        str(block),
        f"{block}",
        f"{block!r}",
        f"{block:>40}",
        format(block, "x"),
    ]
    rendered.append(json.dumps({"b": block}, default=str))
    for text in rendered:
        assert secret.hex() not in text.lower()
        assert "tpk" in text
    with pytest.raises(TypeError):
        json.dumps(block)
    with pytest.raises(TypeError):
        pickle.dumps(block)
    with pytest.raises(AttributeError):
        _ = block.__dict__
    assert copy.copy(block) is block
    assert copy.deepcopy(block) is block
    with pytest.raises(TypeError):
        bytes(block)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        hash(block)


def test_encrypted_pin_block_validates_and_compares() -> None:
    """Lengths must fit the format; equality covers bytes, key, version and format."""
    with pytest.raises(ValueError, match="format 4"):
        EncryptedPinBlock(
            bytes(8), key_id="k", key_version=1, pin_block_format=PinBlockFormat.ISO_4
        )
    with pytest.raises(ValueError, match="format 0"):
        EncryptedPinBlock(
            bytes(9), key_id="k", key_version=1, pin_block_format=PinBlockFormat.ISO_0
        )
    one = EncryptedPinBlock(
        bytes(8), key_id="k", key_version=1, pin_block_format=PinBlockFormat.ISO_0
    )
    same = EncryptedPinBlock(
        bytes(8), key_id="k", key_version=1, pin_block_format=PinBlockFormat.ISO_0
    )
    other = EncryptedPinBlock(
        bytes(8), key_id="k", key_version=2, pin_block_format=PinBlockFormat.ISO_0
    )
    assert one == same
    assert one != other
    assert len(one) == 8

"""Exporting a PIN key under a key-encryption key (a PIN pad's TMK), on both backends.

The software store enciphers the TPK ECB under the TMK and gives its check
value; the result loads into the simulated PIN pad, which deciphers it with
the same TMK and checks the value. SoftHSM2's PIN keys are not extractable
(``CKA_EXTRACTABLE`` false): the PKCS#11 store refuses the export cleanly.
The usage and algorithm checks hold on both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from protocols.pinpad.commands import LoadKeyParams
from protocols.pinpad.frames import KeyAlgorithm
from security.keystore import Algorithm, KeyUsage, KeyUsageError, UnsupportedAlgorithmError
from simulators.pinpad.model import PadKeys
from tests.security.test_keystore import TDES_KCV, TDES_KEY

if TYPE_CHECKING:
    from security.keystore import KeyStore

TMK = bytes.fromhex("11223344556677888877665544332211")


def _ecb(key: bytes, data: bytes) -> bytes:
    encryptor = Cipher(TripleDES(key + key[:8]), modes.ECB()).encryptor()  # noqa: S305 - ECB load
    return encryptor.update(data) + encryptor.finalize()


def test_tpk_exported_under_the_tmk_loads_into_the_pad(keystore: KeyStore) -> None:
    """ECB under the TMK with the TPK's check value; the pad takes it (software store)."""
    keystore.import_key("tmk-pad-1", Algorithm.TDES_2KEY, KeyUsage.KEY_WRAP, TMK)
    keystore.import_key("tpk-pad-1", Algorithm.TDES_2KEY, KeyUsage.PIN, TDES_KEY)
    if keystore.backend != "software":
        with pytest.raises(UnsupportedAlgorithmError):
            keystore.export_key("tpk-pad-1", "tmk-pad-1")
        return
    exported = keystore.export_key("tpk-pad-1", "tmk-pad-1")
    assert exported.wrapped == _ecb(TMK, TDES_KEY)
    assert (exported.key_check_value, exported.version, exported.kek_version) == (TDES_KCV, 1, 1)
    assert exported.wrapped.hex() not in repr(exported)
    assert exported.wrapped.hex().upper() not in repr(exported)
    pad = PadKeys(TMK, KeyAlgorithm.TDES_2KEY)
    try:
        params = LoadKeyParams(KeyAlgorithm.TDES_2KEY, exported.wrapped, exported.key_check_value)
        assert pad.load(params) == keystore.key_check_value("tpk-pad-1")
    finally:
        pad.close()


def test_export_checks_usages_and_algorithms(keystore: KeyStore) -> None:
    """Only a PIN key, only under a key-wrap key, only of the same block size."""
    keystore.import_key("tmk", Algorithm.TDES_2KEY, KeyUsage.KEY_WRAP, TMK)
    keystore.generate_key("aes-tmk", Algorithm.AES_128, KeyUsage.KEY_WRAP)
    keystore.import_key("tpk", Algorithm.TDES_2KEY, KeyUsage.PIN, TDES_KEY)
    keystore.generate_key("data", Algorithm.AES_256, KeyUsage.ENCRYPT)
    with pytest.raises(KeyUsageError):
        keystore.export_key("data", "aes-tmk")  # not a PIN key
    with pytest.raises(KeyUsageError):
        keystore.export_key("tpk", "tpk")  # a PIN key wraps nothing
    with pytest.raises(KeyUsageError):
        keystore.export_key("tpk", "aes-tmk")  # 16-byte blocks for 8-byte ones
    with pytest.raises(KeyUsageError):
        keystore.encrypt("aes-tmk", b"x")  # a key-wrap key encrypts nothing else
    with pytest.raises(KeyUsageError):
        keystore.encrypt_pin_block("tmk", "123456", "6217000010001234567", 0)  # type: ignore[arg-type]

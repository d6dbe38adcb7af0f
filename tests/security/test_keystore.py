"""The key store contract: every test runs on the software store and on SoftHSM2."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from security.keystore import (
    Algorithm,
    Ciphertext,
    DecryptionError,
    InvalidKeyIdError,
    InvalidKeyMaterialError,
    KeyExistsError,
    KeyInfo,
    KeyNotFoundError,
    KeyStateError,
    KeyStore,
    KeyStoreError,
    KeyUsage,
    KeyUsageError,
    Mac,
    Signature,
    UnsupportedAlgorithmError,
    VerificationError,
)

if TYPE_CHECKING:
    from tests.security.conftest import KeyStoreFactory

# RFC 4231 section 4.7, HMAC-SHA-256 test case 6 (test cases 1-5 use keys shorter
# than 32 bytes, which the store refuses).
RFC4231_KEY = bytes.fromhex("aa" * 131)
RFC4231_DATA = b"Test Using Larger Than Block-Size Key - Hash Key First"
RFC4231_MAC = bytes.fromhex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")

# Double-length 3DES key and its check value (first 3 bytes of E(0^8)), the classic
# ANSI X9.24 / payShield documentation example.
TDES_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TDES_KCV = "08D7B4"

AEAD_ALGORITHMS = [Algorithm.AES_256, Algorithm.AES_128, Algorithm.SM4_128]


def _require(store: KeyStore, algorithm: Algorithm, usage: KeyUsage, key_id: str) -> bool:
    """Generate a key, or check the backend refuses the algorithm cleanly."""
    if algorithm in store.supported_algorithms:
        store.generate_key(key_id, algorithm, usage)
        return True
    with pytest.raises(UnsupportedAlgorithmError) as caught:
        store.generate_key(key_id, algorithm, usage)
    assert caught.value.algorithm == algorithm.value
    assert caught.value.backend == store.backend
    return False


def test_generate_lists_version_one(keystore: KeyStore) -> None:
    """A generated key appears in the list as version 1 with its algorithm and usage."""
    info = keystore.generate_key("data-1", Algorithm.AES_256, KeyUsage.ENCRYPT)
    assert info == KeyInfo("data-1", 1, Algorithm.AES_256, KeyUsage.ENCRYPT)
    assert keystore.list_keys() == [info]
    assert keystore.key_info("data-1") == info


def test_generate_existing_key_is_refused(keystore: KeyStore) -> None:
    """Generating a key id twice is refused: rotation is explicit."""
    keystore.generate_key("data", Algorithm.AES_256, KeyUsage.ENCRYPT)
    with pytest.raises(KeyExistsError) as caught:
        keystore.generate_key("data", Algorithm.AES_256, KeyUsage.ENCRYPT)
    assert caught.value.key_id == "data"


@pytest.mark.parametrize("key_id", ["", "-lead", "has space", "x" * 65, "ключ", "a/b"])
def test_invalid_key_ids_are_refused(keystore: KeyStore, key_id: str) -> None:
    """Key ids are 1-64 safe characters, starting alphanumeric."""
    with pytest.raises(InvalidKeyIdError):
        keystore.generate_key(key_id, Algorithm.AES_256, KeyUsage.ENCRYPT)


def test_unknown_key_and_version_raise_not_found(keystore: KeyStore) -> None:
    """Unknown keys and versions raise KeyNotFoundError with the key and version."""
    with pytest.raises(KeyNotFoundError) as caught:
        keystore.key_info("nope")
    assert (caught.value.key_id, caught.value.version) == ("nope", None)
    keystore.generate_key("data", Algorithm.AES_256, KeyUsage.ENCRYPT)
    with pytest.raises(KeyNotFoundError) as caught:
        keystore.key_info("data", 7)
    assert caught.value.version == 7
    with pytest.raises(KeyNotFoundError):
        keystore.encrypt("nope", b"x")


@pytest.mark.parametrize("algorithm", AEAD_ALGORITHMS)
def test_aead_round_trip(keystore: KeyStore, algorithm: Algorithm) -> None:
    """Encrypt then decrypt returns the plaintext, bound to the associated data."""
    if not _require(keystore, algorithm, KeyUsage.ENCRYPT, "data"):
        return
    sealed = keystore.encrypt("data", b"110101199003077777", associated_data=b"person:1")
    assert sealed.key_id == "data"
    assert sealed.key_version == 1
    assert len(sealed.nonce) == 12
    assert b"110101199003077777" not in sealed.data
    assert keystore.decrypt(sealed, associated_data=b"person:1") == b"110101199003077777"


@pytest.mark.parametrize("algorithm", AEAD_ALGORITHMS)
def test_aead_rejects_tampering_and_wrong_associated_data(
    keystore: KeyStore, algorithm: Algorithm
) -> None:
    """A flipped bit, a wrong associated data or a truncation raise DecryptionError."""
    if not _require(keystore, algorithm, KeyUsage.ENCRYPT, "data"):
        return
    sealed = keystore.encrypt("data", b"secret", associated_data=b"a")
    flipped = bytes([sealed.data[0] ^ 1]) + sealed.data[1:]
    bad = [
        (Ciphertext("data", 1, sealed.nonce, flipped), b"a"),
        (sealed, b"b"),
        (Ciphertext("data", 1, sealed.nonce, sealed.data[:5]), b"a"),
    ]
    for ciphertext, aad in bad:
        with pytest.raises(DecryptionError) as caught:
            keystore.decrypt(ciphertext, associated_data=aad)
        assert (caught.value.key_id, caught.value.version) == ("data", 1)


def test_aes_gcm_interoperates(keystore: KeyStore) -> None:
    """An imported AES-256 key's ciphertext opens with a standard AES-GCM implementation."""
    material = bytes(range(32))
    keystore.import_key("data", Algorithm.AES_256, KeyUsage.ENCRYPT, material)
    sealed = keystore.encrypt("data", b"payload", associated_data=b"hdr")
    assert AESGCM(material).decrypt(sealed.nonce, sealed.data, b"hdr") == b"payload"


def test_rotation_encrypts_with_newest_and_decrypts_with_older(keystore: KeyStore) -> None:
    """After rotation the new version encrypts; older ciphertexts still open until retired."""
    keystore.generate_key("data", Algorithm.AES_256, KeyUsage.ENCRYPT)
    old = keystore.encrypt("data", b"old")
    rotated = keystore.rotate_key("data")
    assert rotated.version == 2
    new = keystore.encrypt("data", b"new")
    assert new.key_version == 2
    assert keystore.decrypt(old) == b"old"
    assert keystore.decrypt(new) == b"new"
    assert [i.version for i in keystore.list_keys()] == [1, 2]


def test_retire_destroys_old_version(keystore: KeyStore) -> None:
    """A retired version no longer decrypts and is no longer listed."""
    keystore.generate_key("data", Algorithm.AES_256, KeyUsage.ENCRYPT)
    old = keystore.encrypt("data", b"old")
    keystore.rotate_key("data")
    keystore.retire_key("data", 1)
    with pytest.raises(KeyNotFoundError) as caught:
        keystore.decrypt(old)
    assert caught.value.version == 1
    assert [i.version for i in keystore.list_keys()] == [2]
    assert keystore.rotate_key("data").version == 3


def test_retiring_current_version_is_refused(keystore: KeyStore) -> None:
    """The current version cannot be retired: rotate first."""
    keystore.generate_key("data", Algorithm.AES_256, KeyUsage.ENCRYPT)
    with pytest.raises(KeyStateError) as caught:
        keystore.retire_key("data", 1)
    assert (caught.value.key_id, caught.value.version) == ("data", 1)
    with pytest.raises(KeyNotFoundError):
        keystore.retire_key("data", 2)


def test_sign_and_verify(keystore: KeyStore) -> None:
    """ECDSA P-256 signatures verify in the store and with the exported public key."""
    keystore.generate_key("sig", Algorithm.EC_P256, KeyUsage.SIGN)
    signature = keystore.sign("sig", b"message")
    assert (signature.key_id, signature.key_version) == ("sig", 1)
    keystore.verify(signature, b"message")
    public = serialization.load_der_public_key(keystore.public_key("sig"))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP256R1)
    public.verify(signature.value, b"message", ec.ECDSA(hashes.SHA256()))


def test_bad_signatures_raise_verification_error(keystore: KeyStore) -> None:
    """Other data, a flipped byte and garbage DER all fail verification."""
    keystore.generate_key("sig", Algorithm.EC_P256, KeyUsage.SIGN)
    signature = keystore.sign("sig", b"message")
    flipped = bytearray(signature.value)
    flipped[-1] ^= 1
    for candidate, data in [
        (signature, b"other"),
        (Signature("sig", 1, bytes(flipped)), b"message"),
        (Signature("sig", 1, b"\x30\x03garbage"), b"message"),
    ]:
        with pytest.raises(VerificationError):
            keystore.verify(candidate, data)


def test_signing_key_rotation(keystore: KeyStore) -> None:
    """Old signatures verify with their version after rotation; new ones use the new key."""
    keystore.generate_key("sig", Algorithm.EC_P256, KeyUsage.SIGN)
    old = keystore.sign("sig", b"m")
    keystore.rotate_key("sig")
    new = keystore.sign("sig", b"m")
    assert new.key_version == 2
    keystore.verify(old, b"m")
    keystore.verify(new, b"m")
    assert keystore.public_key("sig", 1) != keystore.public_key("sig", 2)
    keystore.retire_key("sig", 1)
    with pytest.raises(KeyNotFoundError):
        keystore.verify(old, b"m")


def test_hmac_matches_rfc4231(keystore: KeyStore) -> None:
    """HMAC-SHA256 with an imported key matches RFC 4231 test case 6."""
    keystore.import_key("idx", Algorithm.HMAC_SHA256, KeyUsage.MAC, RFC4231_KEY)
    mac = keystore.mac("idx", RFC4231_DATA)
    assert mac == Mac("idx", 1, RFC4231_MAC)
    keystore.verify_mac(mac, RFC4231_DATA)
    with pytest.raises(VerificationError):
        keystore.verify_mac(mac, RFC4231_DATA + b".")
    with pytest.raises(VerificationError):
        keystore.verify_mac(Mac("idx", 1, RFC4231_MAC[:-1]), RFC4231_DATA)


@pytest.mark.parametrize("algorithm", [Algorithm.HMAC_SHA256, Algorithm.HMAC_SM3])
def test_generated_mac_keys_are_deterministic_per_version(
    keystore: KeyStore, algorithm: Algorithm
) -> None:
    """A MAC key gives the same MAC for the same data (blind index), another after rotation."""
    if not _require(keystore, algorithm, KeyUsage.MAC, "idx"):
        return
    first = keystore.mac("idx", b"110101199003077777")
    assert keystore.mac("idx", b"110101199003077777") == first
    keystore.rotate_key("idx")
    second = keystore.mac("idx", b"110101199003077777")
    assert second.key_version == 2
    assert second.value != first.value
    keystore.verify_mac(first, b"110101199003077777")


def test_usage_is_enforced(keystore: KeyStore) -> None:
    """A key does only what its usage allows."""
    keystore.generate_key("data", Algorithm.AES_256, KeyUsage.ENCRYPT)
    keystore.generate_key("pin", Algorithm.AES_256, KeyUsage.PIN)
    keystore.generate_key("sig", Algorithm.EC_P256, KeyUsage.SIGN)
    with pytest.raises(KeyUsageError) as caught:
        keystore.encrypt("pin", b"x")
    assert (caught.value.key_id, caught.value.operation) == ("pin", "encrypt")
    with pytest.raises(KeyUsageError):
        keystore.sign("data", b"x")
    with pytest.raises(KeyUsageError):
        keystore.mac("sig", b"x")
    with pytest.raises(KeyUsageError):
        keystore.public_key("data")
    with pytest.raises(KeyUsageError):
        keystore.key_check_value("data")


@pytest.mark.parametrize(
    ("algorithm", "usage"),
    [
        (Algorithm.TDES_2KEY, KeyUsage.ENCRYPT),
        (Algorithm.HMAC_SHA256, KeyUsage.ENCRYPT),
        (Algorithm.EC_P256, KeyUsage.PIN),
        (Algorithm.AES_256, KeyUsage.SIGN),
    ],
)
def test_algorithm_usage_combinations_are_checked(
    keystore: KeyStore, algorithm: Algorithm, usage: KeyUsage
) -> None:
    """Algorithms are created only for the usages they allow."""
    with pytest.raises(KeyUsageError):
        keystore.generate_key("k", algorithm, usage)
    assert keystore.list_keys() == []


def test_unsupported_algorithms_are_refused_cleanly(keystore: KeyStore) -> None:
    """Every algorithm a backend lacks raises UnsupportedAlgorithmError and stores nothing."""
    for algorithm in Algorithm:
        if algorithm not in keystore.supported_algorithms:
            usage = min(algorithm.usages)
            with pytest.raises(UnsupportedAlgorithmError):
                keystore.generate_key("k", algorithm, usage)
    assert Algorithm.SM2 not in keystore.supported_algorithms
    assert keystore.list_keys() == []


@pytest.mark.parametrize(
    ("algorithm", "material"),
    [
        (Algorithm.AES_256, bytes(16)),
        (Algorithm.TDES_2KEY, bytes(24)),
        (Algorithm.TDES_2KEY, bytes.fromhex("0123456789ABCDEF") * 2),
        (Algorithm.TDES_3KEY, bytes.fromhex("0123456789ABCDEF") * 3),
        (Algorithm.HMAC_SHA256, bytes(20)),
    ],
)
def test_bad_key_material_is_refused(
    keystore: KeyStore, algorithm: Algorithm, material: bytes
) -> None:
    """Wrong lengths and single-DES-equivalent 3DES keys are refused without showing bytes."""
    usage = min(algorithm.usages)
    with pytest.raises(InvalidKeyMaterialError) as caught:
        keystore.import_key("k", algorithm, usage, material)
    assert material.hex() not in str(caught.value).lower()
    assert keystore.list_keys() == []


def test_key_pairs_cannot_be_imported(keystore: KeyStore) -> None:
    """Signing key pairs are generated inside the store only."""
    with pytest.raises(UnsupportedAlgorithmError):
        keystore.import_key("sig", Algorithm.EC_P256, KeyUsage.SIGN, bytes(32))


def test_import_adds_versions_of_the_same_kind(keystore: KeyStore) -> None:
    """Importing under an existing id adds a version; another algorithm is refused."""
    keystore.import_key("zpk", Algorithm.TDES_2KEY, KeyUsage.PIN, TDES_KEY)
    second = keystore.import_key("zpk", Algorithm.TDES_2KEY, KeyUsage.PIN, TDES_KEY[::-1])
    assert second.version == 2
    with pytest.raises(KeyUsageError):
        keystore.import_key("zpk", Algorithm.AES_256, KeyUsage.PIN, bytes(range(32)))


def test_key_check_value(keystore: KeyStore) -> None:
    """The KCV of a PIN key is the first 3 bytes of E(zero block)."""
    keystore.import_key("zpk", Algorithm.TDES_2KEY, KeyUsage.PIN, TDES_KEY)
    assert keystore.key_check_value("zpk") == TDES_KCV


def test_keys_persist_across_opens(keystore_factory: KeyStoreFactory) -> None:
    """A second store on the same file or token sees the keys and can use them."""
    first = keystore_factory()
    first.generate_key("data", Algorithm.AES_256, KeyUsage.ENCRYPT)
    first.rotate_key("data")
    sealed = first.encrypt("data", b"kept")
    first.close()
    second = keystore_factory()
    assert [i.version for i in second.list_keys()] == [1, 2]
    assert second.decrypt(sealed) == b"kept"


def test_errors_and_repr_never_show_key_material(keystore: KeyStore) -> None:
    """No error message or repr carries the imported key bytes."""
    keystore.import_key("zpk", Algorithm.TDES_2KEY, KeyUsage.PIN, TDES_KEY)
    texts = [repr(keystore), str(keystore), repr(keystore.list_keys())]
    for action in (
        lambda: keystore.encrypt("zpk", b"x"),
        lambda: keystore.retire_key("zpk", 1),
        lambda: keystore.import_key("zpk", Algorithm.AES_256, KeyUsage.PIN, bytes(32)),
    ):
        with pytest.raises(KeyStoreError) as caught:
            action()
        texts += [str(caught.value), repr(caught.value), repr(vars(caught.value))]
    for text in texts:
        assert TDES_KEY.hex() not in text.lower()
        assert TDES_KEY.hex()[:16] not in text.lower()

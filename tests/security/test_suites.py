"""Crypto suites: published vectors, cross-implementation checks, round trips, refusals."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from gmssl import sm2 as gmssl_sm2  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from security.suites import (
    GM,
    INTL,
    SUITES,
    AeadAuthenticationError,
    CryptoSuite,
    InvalidParameterError,
    KeyFormatError,
    SuiteMismatchError,
    UnknownSuiteError,
    get_suite,
)
from security.suites.gm import SM2_ORDER
from security.suites.intl import P256_ORDER

ALL_SUITES = pytest.mark.parametrize("suite", [GM, INTL], ids=["gm", "intl"])

# GM/T 0003.5-2012 (GB/T 32918.5) example: SM2 signature on the recommended
# curve, message "message digest", user id 1234567812345678.
SM2_D = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
SM2_PUB = bytes.fromhex(
    "04"
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
SM2_K = "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21"
SM2_SIG = bytes.fromhex(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)
SM2_MSG = b"message digest"

# RFC 6979 A.2.5: ECDSA P-256, SHA-256, message "sample".
P256_D = bytes.fromhex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721")
P256_PUB = bytes.fromhex(
    "04"
    "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
    "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"
)
P256_SIG = bytes.fromhex(
    "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
    "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"
)


def _gmssl(public: bytes, private: bytes | None = None) -> Any:  # noqa: ANN401 - untyped lib
    """A pure-Python gmssl SM2 object: an independent implementation to cross-check with."""
    return gmssl_sm2.CryptSM2(
        private_key=private.hex() if private else None, public_key=public[1:].hex()
    )


# ------------------------------------------------------------------ registry
def test_get_suite_by_name() -> None:
    """Suites are found by their wire names, and satisfy the protocol."""
    assert get_suite("gm") is GM
    assert get_suite("intl") is INTL
    assert set(SUITES) == {"gm", "intl"}
    assert all(isinstance(suite, CryptoSuite) for suite in SUITES.values())


def test_unknown_suite_name_is_refused() -> None:
    """An unknown name raises UnknownSuiteError carrying the name."""
    with pytest.raises(UnknownSuiteError) as info:
        get_suite("rot13")
    assert info.value.name == "rot13"


# ----------------------------------------------------------------- SM3 / SHA
@pytest.mark.parametrize(
    ("message", "digest"),
    [
        (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
        (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
    ],
)
def test_sm3_vectors(message: bytes, digest: str) -> None:
    """SM3 matches the GB/T 32905 appendix examples."""
    assert GM.hash(message).hex() == digest
    assert GM.digest_size == 32


def test_sha256_vector() -> None:
    """SHA-256 matches the FIPS 180 "abc" example."""
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert INTL.hash(b"abc").hex() == expected


# ---------------------------------------------------------------------- HMAC
@pytest.mark.parametrize(
    ("key", "data", "tag"),
    [
        (
            b"\x0b" * 20,
            b"Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe",
            b"what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
    ],
    ids=["rfc4231-1", "rfc4231-2"],
)
def test_hmac_sha256_rfc4231(key: bytes, data: bytes, tag: str) -> None:
    """HMAC-SHA256 matches RFC 4231 test cases 1 and 2."""
    assert INTL.hmac(key, data).hex() == tag
    assert INTL.hmac_verify(key, data, bytes.fromhex(tag))


def test_hmac_sm3_matches_rfc2104_construction() -> None:
    """HMAC-SM3 equals RFC 2104 built by hand from SM3 (64-byte block)."""
    key, data = b"key-for-hmac-sm3", b"social security card"
    padded = key.ljust(64, b"\x00")
    inner = GM.hash(bytes(b ^ 0x36 for b in padded) + data)
    expected = GM.hash(bytes(b ^ 0x5C for b in padded) + inner)
    assert GM.hmac(key, data) == expected


@ALL_SUITES
def test_hmac_verify_refuses_wrong_tag(suite: CryptoSuite) -> None:
    """A changed tag or changed data fails verification."""
    tag = suite.hmac(b"k", b"data")
    assert suite.hmac_verify(b"k", b"data", tag)
    assert not suite.hmac_verify(b"k", b"data", tag[:-1] + bytes([tag[-1] ^ 1]))
    assert not suite.hmac_verify(b"k", b"datA", tag)
    assert not suite.hmac_verify(b"k", b"data", tag[:16])


# ---------------------------------------------------------------------- AEAD
def test_sm4_gcm_rfc8998_vector() -> None:
    """SM4-GCM matches RFC 8998 Appendix A.1."""
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    nonce = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plaintext = bytes.fromhex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    expected = bytes.fromhex(
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
        "83DE3541E4C2B58177E065A9BF7B62EC"
    )
    assert GM.aead_encrypt(key, nonce, plaintext, aad) == expected
    assert GM.aead_decrypt(key, nonce, expected, aad) == plaintext


@pytest.mark.parametrize(
    ("plaintext", "expected"),
    [
        (b"", "530f8afbc74536b9a963b4f1c4cb738b"),
        (bytes(16), "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"),
    ],
    ids=["gcm-test-case-13", "gcm-test-case-14"],
)
def test_aes256_gcm_nist_vectors(plaintext: bytes, expected: str) -> None:
    """AES-256-GCM matches the GCM specification's test cases 13 and 14."""
    key, nonce = bytes(32), bytes(12)
    assert INTL.aead_encrypt(key, nonce, plaintext, b"").hex() == expected
    assert INTL.aead_decrypt(key, nonce, bytes.fromhex(expected), b"") == plaintext


@ALL_SUITES
def test_aead_round_trip_and_tamper(suite: CryptoSuite) -> None:
    """Encryption round-trips; any change of text, tag, AD, nonce or key is refused."""
    key = bytes(range(suite.aead_key_size))
    nonce = b"\x01" * 12
    sealed = suite.aead_encrypt(key, nonce, b"card data", b"header")
    assert len(sealed) == len(b"card data") + 16
    assert suite.aead_decrypt(key, nonce, sealed, b"header") == b"card data"
    tampered = [
        (key, nonce, bytes([sealed[0] ^ 1]) + sealed[1:], b"header"),
        (key, nonce, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"header"),
        (key, nonce, sealed, b"headeR"),
        (key, b"\x02" * 12, sealed, b"header"),
        (bytes(suite.aead_key_size), nonce, sealed, b"header"),
        (key, nonce, sealed[:15], b"header"),
    ]
    for args in tampered:
        with pytest.raises(AeadAuthenticationError) as info:
            suite.aead_decrypt(*args)
        assert info.value.suite == suite.name


@ALL_SUITES
def test_aead_refuses_wrong_key_and_nonce_lengths(suite: CryptoSuite) -> None:
    """Wrong key or nonce lengths are local misuse with the lengths in attributes."""
    with pytest.raises(InvalidParameterError) as info:
        suite.aead_encrypt(bytes(suite.aead_key_size + 1), bytes(12), b"", b"")
    assert (info.value.parameter, info.value.expected) == ("key", suite.aead_key_size)
    with pytest.raises(InvalidParameterError) as info:
        suite.aead_decrypt(bytes(suite.aead_key_size), bytes(16), bytes(16), b"")
    assert (info.value.parameter, info.value.actual) == ("nonce", 16)


# ------------------------------------------------------------------------ SM2
def test_sm2_published_example_verifies() -> None:
    """The GM/T 0003.5 example signature verifies, and the key derives its public point."""
    key = GM.load_signing_key(SM2_D)
    assert key.public_key.encoded == SM2_PUB
    public = GM.load_verify_key(SM2_PUB)
    assert GM.verify(public, SM2_SIG, SM2_MSG)
    assert not GM.verify(public, SM2_SIG, b"message digesT")


def test_sm2_published_example_reproduced_by_gmssl() -> None:
    """gmssl, given the example's k, reproduces r || s exactly (default user id)."""
    other = _gmssl(SM2_PUB, SM2_D)
    assert bytes.fromhex(other.sign_with_sm3(SM2_MSG, SM2_K.lower())) == SM2_SIG


def test_sm2_cross_verification_with_gmssl() -> None:
    """Native signatures verify in gmssl, and gmssl signatures verify natively."""
    key = GM.generate_signing_key()
    other = _gmssl(key.public_key.encoded, GM.signing_key_bytes(key))
    for message in (b"", b"abc", bytes(range(256)) * 5):
        ours = GM.sign(key, message)
        assert other.verify_with_sm3(ours.hex(), message)
        theirs = bytes.fromhex(other.sign_with_sm3(message))
        assert GM.verify(key.public_key, theirs, message)


def test_sm2_signatures_are_randomized_and_in_range() -> None:
    """Two signatures of one message differ; r and s lie in [1, n-1]."""
    key = GM.load_signing_key(SM2_D)
    first, second = GM.sign(key, b"m"), GM.sign(key, b"m")
    assert first != second
    for signature in (first, second):
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        assert 0 < r < SM2_ORDER
        assert 0 < s < SM2_ORDER


# ---------------------------------------------------------------------- ECDSA
def test_p256_rfc6979_vector_verifies() -> None:
    """The RFC 6979 A.2.5 signature of "sample" verifies under the derived key."""
    key = INTL.load_signing_key(P256_D)
    assert key.public_key.encoded == P256_PUB
    assert INTL.verify(INTL.load_verify_key(P256_PUB), P256_SIG, b"sample")
    assert not INTL.verify(key.public_key, P256_SIG, b"samplE")


def test_p256_signatures_verify_in_cryptography_directly() -> None:
    """Our r || s converts to DER that cryptography accepts on its own."""
    key = INTL.generate_signing_key()
    signature = INTL.sign(key, b"payload")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key.public_key.encoded)
    public.verify(encode_dss_signature(r, s), b"payload", ec.ECDSA(hashes.SHA256()))


def test_p256_rfc6979_deterministic_signature_matches() -> None:
    """Cryptography's RFC 6979 signing with our loaded scalar gives the published r, s."""
    private = ec.derive_private_key(
        int.from_bytes(INTL.signing_key_bytes(INTL.load_signing_key(P256_D)), "big"),
        ec.SECP256R1(),
    )
    der = private.sign(b"sample", ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    assert r.to_bytes(32, "big") + s.to_bytes(32, "big") == P256_SIG
    assert s < P256_ORDER


# ------------------------------------------------------------ keys, per suite
@ALL_SUITES
def test_sign_verify_round_trip(suite: CryptoSuite) -> None:
    """A fresh key signs; the signature verifies for that message only."""
    key = suite.generate_signing_key()
    signature = suite.sign(key, b"hello")
    assert len(signature) == 64
    assert suite.verify(key.public_key, signature, b"hello")
    assert not suite.verify(key.public_key, signature, b"hellO")
    assert not suite.verify(suite.generate_signing_key().public_key, signature, b"hello")


@ALL_SUITES
def test_key_serialization_round_trip(suite: CryptoSuite) -> None:
    """Private scalars and public points reload to equal keys."""
    key = suite.generate_signing_key()
    again = suite.load_signing_key(suite.signing_key_bytes(key))
    assert again.public_key == key.public_key
    public = suite.load_verify_key(key.public_key.encoded)
    assert public == key.public_key
    assert len(public.encoded) == 65
    assert public.encoded[0] == 0x04
    assert suite.verify(public, suite.sign(again, b"m"), b"m")


@ALL_SUITES
@pytest.mark.parametrize(
    "encoded",
    [b"", b"\x04" + bytes(64), b"\x02" + bytes(32), b"\x04" + b"\xff" * 64, b"\x05" + bytes(64)],
    ids=["empty", "zero-point", "compressed", "off-curve", "bad-prefix"],
)
def test_invalid_public_keys_are_refused(suite: CryptoSuite, encoded: bytes) -> None:
    """Bytes that are not an uncompressed point on the curve raise KeyFormatError."""
    with pytest.raises(KeyFormatError) as info:
        suite.load_verify_key(encoded)
    assert (info.value.suite, info.value.kind) == (suite.name, "public")


@ALL_SUITES
def test_invalid_private_keys_are_refused(suite: CryptoSuite) -> None:
    """Zero, out-of-range and wrongly sized scalars raise KeyFormatError."""
    for raw in (bytes(32), b"\xff" * 32, b"\x01" * 31, b"\x01" * 33):
        with pytest.raises(KeyFormatError) as info:
            suite.load_signing_key(raw)
        assert info.value.kind == "private"


def test_sm2_scalar_n_minus_1_is_refused() -> None:
    """GB/T 32918.1 private keys lie in [1, n-2]: n-1 is refused."""
    with pytest.raises(KeyFormatError):
        GM.load_signing_key((SM2_ORDER - 1).to_bytes(32, "big"))


def test_keys_of_one_suite_are_refused_by_the_other() -> None:
    """Handing a gm key to intl (or back) is a SuiteMismatchError."""
    gm_key, intl_key = GM.generate_signing_key(), INTL.generate_signing_key()
    with pytest.raises(SuiteMismatchError) as info:
        INTL.sign(gm_key, b"m")
    assert (info.value.expected, info.value.actual) == ("intl", "gm")
    with pytest.raises(SuiteMismatchError):
        GM.verify(intl_key.public_key, bytes(64), b"m")
    with pytest.raises(SuiteMismatchError):
        GM.signing_key_bytes(intl_key)


@ALL_SUITES
def test_repr_never_shows_the_private_key(suite: CryptoSuite) -> None:
    """A signing key's repr names the suite and public point only."""
    key = suite.generate_signing_key()
    scalar = suite.signing_key_bytes(key).hex()
    text = repr(key) + str(key) + repr(key.public_key)
    assert scalar not in text
    assert scalar[:16] not in text
    assert suite.name in text


@ALL_SUITES
@given(signature=st.binary(max_size=80), message=st.binary(max_size=64))
def test_verify_never_raises_on_garbage(
    suite: CryptoSuite, signature: bytes, message: bytes
) -> None:
    """Arbitrary signature bytes make verify return False, never raise."""
    key = SIGNING_KEYS[suite.name]
    assert suite.verify(key.public_key, signature, message) is False


@ALL_SUITES
@pytest.mark.parametrize("value", [0, 1, 2**256 - 1], ids=["zero", "one", "max"])
def test_verify_refuses_boundary_r_s(suite: CryptoSuite, value: int) -> None:
    """R or s equal to 0, 1-ish junk or >= n never verifies and never raises."""
    key = SIGNING_KEYS[suite.name]
    good = suite.sign(key, b"m")
    for signature in (
        value.to_bytes(32, "big") + good[32:],
        good[:32] + value.to_bytes(32, "big"),
    ):
        assert suite.verify(key.public_key, signature, b"m") is False


SIGNING_KEYS = {"gm": GM.load_signing_key(SM2_D), "intl": INTL.load_signing_key(P256_D)}

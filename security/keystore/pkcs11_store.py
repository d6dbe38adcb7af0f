"""PKCS#11 key store (python-pkcs11): keys live in a token and never leave it.

Mapping of the store's names onto token objects::

    CKA_LABEL = key id (UTF-8)                   e.g. "tpk-0001"
    CKA_ID    = b"v<version>.<usage>" (ASCII)    e.g. b"v3.pin"

Secret keys are token objects with ``CKA_SENSITIVE`` true and
``CKA_EXTRACTABLE`` false, and only the capabilities their usage needs
(``ENCRYPT``/``DECRYPT`` for PIN and data keys, ``SIGN``/``VERIFY`` for HMAC
keys); an EC key pair shares one label and id. Objects whose label or id does
not follow this scheme (other applications on the token) are ignored.

Retiring a version destroys its objects. Algorithms: AES-128/256, 2- and 3-key
3DES, HMAC-SHA256 (``CKK_GENERIC_SECRET``), EC P-256, as far as the token's
mechanism list allows; standard PKCS#11 has no SM2/SM3/SM4 mechanisms (vendor
HSMs define their own), so those raise :class:`UnsupportedAlgorithmError`.

PIN translation: PKCS#11 has no standard PIN-translate mechanism, so this
backend decrypts the PIN block with ``CKM_DES3_ECB``/``CKM_AES_ECB`` inside the
token and re-encodes it in this process's memory before encrypting it again
under the target key: the clear PIN block exists briefly in this process (it
never leaves the store object). A production HSM with a vendor translate
command overrides ``_translate_pin_block`` to do it in one call.

Calls are synchronous and serialized with a lock (one session). SoftHSM2 is
in-process and fast; with a network HSM, call the store via ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.exceptions import PKCS11Error
from pkcs11.mechanisms import GCMParams
from pkcs11.util.ec import encode_named_curve_parameters

from security.keystore.base import KeyStore
from security.keystore.errors import BackendError, DecryptionError, KeyNotFoundError
from security.keystore.model import Algorithm, KeyInfo, KeyUsage

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from pkcs11._pkcs11 import lib as Pkcs11Library  # noqa: N812  # the class behind pkcs11.lib()

__all__ = ["Pkcs11KeyStore", "load_module"]

_ID_RE: Final = re.compile(rb"v([1-9][0-9]{0,8})\.([a-z]+)")
_P256_COORDINATE: Final = 32  # bytes
_P256_POINT: Final = 1 + 2 * _P256_COORDINATE  # uncompressed point 04||X||Y
_GCM_TAG_BITS: Final = 128

_SECRET_TYPES: Final[Mapping[Algorithm, tuple[KeyType, int | None]]] = {
    # algorithm: (CKK, key length in bits for generation, None when implied by the type)
    Algorithm.AES_128: (KeyType.AES, 128),
    Algorithm.AES_256: (KeyType.AES, 256),
    Algorithm.TDES_2KEY: (KeyType.DES2, None),
    Algorithm.TDES_3KEY: (KeyType.DES3, None),
    Algorithm.HMAC_SHA256: (KeyType.GENERIC_SECRET, 256),
}

_NEEDED_MECHANISMS: Final[Mapping[Algorithm, tuple[Mechanism, ...]]] = {
    Algorithm.AES_128: (Mechanism.AES_KEY_GEN, Mechanism.AES_ECB, Mechanism.AES_GCM),
    Algorithm.AES_256: (Mechanism.AES_KEY_GEN, Mechanism.AES_ECB, Mechanism.AES_GCM),
    Algorithm.TDES_2KEY: (Mechanism.DES2_KEY_GEN, Mechanism.DES3_ECB),
    Algorithm.TDES_3KEY: (Mechanism.DES3_KEY_GEN, Mechanism.DES3_ECB),
    Algorithm.HMAC_SHA256: (Mechanism.GENERIC_SECRET_KEY_GEN, Mechanism.SHA256_HMAC),
    Algorithm.EC_P256: (Mechanism.EC_KEY_PAIR_GEN, Mechanism.ECDSA),
}

_LIBRARIES: dict[str, Pkcs11Library] = {}
_LIBRARIES_LOCK = threading.Lock()


def load_module(module: str | Path) -> Pkcs11Library:
    """Load (once per process) and initialize a PKCS#11 module.

    A module can be initialized only once per process (``C_Initialize``), so
    every store on the same module shares one loaded library. SoftHSM2 reads
    ``$SOFTHSM2_CONF`` at this moment.

    Raises:
        BackendError: The module cannot be loaded.
    """
    path = str(Path(module).resolve())
    with _LIBRARIES_LOCK:
        if path not in _LIBRARIES:
            with _mapped("load module"):
                _LIBRARIES[path] = pkcs11.lib(path)
        return _LIBRARIES[path]


@dataclass
class _Login:
    """The process's login on one token: PKCS#11 login state is per application."""

    anchor: pkcs11.Session
    pin_digest: bytes
    stores: int


# C_Logout (which python-pkcs11 calls when a logged-in session closes) logs out
# every session of the process on that token, so one anchor session holds the
# login while any store is open, and stores open their sessions without logging in.
_LOGINS: dict[tuple[str, str], _Login] = {}


def _login(login_key: tuple[str, str], token: pkcs11.Token, user_pin: str) -> None:
    digest = hashlib.sha256(user_pin.encode()).digest()
    with _LIBRARIES_LOCK:
        login = _LOGINS.get(login_key)
        if login is None:
            anchor = token.open(user_pin=user_pin)
            _LOGINS[login_key] = _Login(anchor, digest, 1)
        elif not hmac.compare_digest(login.pin_digest, digest):
            raise BackendError("open session", "PinIncorrect")
        else:
            login.stores += 1


def _logout(login_key: tuple[str, str]) -> None:
    with _LIBRARIES_LOCK:
        login = _LOGINS.get(login_key)
        if login is None:
            return
        login.stores -= 1
        if login.stores <= 0:
            del _LOGINS[login_key]
            with contextlib.suppress(PKCS11Error):
                login.anchor.close()


@contextlib.contextmanager
def _mapped(operation: str) -> Iterator[None]:
    """Translate python-pkcs11 errors into :class:`BackendError` (class name only)."""
    try:
        yield
    except PKCS11Error as exc:
        raise BackendError(operation, type(exc).__name__) from None


class Pkcs11KeyStore(KeyStore):
    """Keys in a PKCS#11 token. Open it with :meth:`open`."""

    backend: ClassVar[str] = "pkcs11"

    def __init__(
        self,
        session: pkcs11.Session,
        mechanisms: frozenset[Mechanism],
        login_key: tuple[str, str],
        *,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        """Use :meth:`open`; this constructor takes an open R/W session on a logged-in token."""
        super().__init__(random=random)
        self._session = session
        self._mechanisms = mechanisms
        self._login_key = login_key
        self._closed = False

    @classmethod
    def open(
        cls,
        module: str | Path,
        *,
        token_label: str,
        user_pin: str,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> Self:
        """Open a logged-in read/write session on the token with this label.

        Args:
            module: Path of the PKCS#11 module (``/usr/lib/softhsm/libsofthsm2.so``).
            token_label: The token's label.
            user_pin: The token's user PIN (from the daemon's secret configuration).
            random: Random source for PIN block fill (tests inject a fixed one).

        Raises:
            BackendError: Module, token or login failed (``cause`` names the reason,
                e.g. ``"NoSuchToken"``, ``"PinIncorrect"``).
        """
        library = load_module(module)
        login_key = (str(Path(module).resolve()), token_label)
        with _mapped("open session"):
            token = library.get_token(token_label=token_label)
            mechanisms = frozenset(token.slot.get_mechanisms())
            _login(login_key, token, user_pin)
            try:
                session = token.open(rw=True)
            except BaseException:
                _logout(login_key)
                raise
        return cls(session, mechanisms, login_key, random=random)

    def close(self) -> None:
        """Close the session; the last store on a token logs the process out of it."""
        with self._lock:
            if not self._closed:
                self._closed = True
                with contextlib.suppress(PKCS11Error):
                    self._session.close()
                _logout(self._login_key)

    @property
    def supported_algorithms(self) -> frozenset[Algorithm]:
        """Algorithms whose mechanisms the token lists."""
        return frozenset(
            algorithm
            for algorithm, needed in _NEEDED_MECHANISMS.items()
            if all(m in self._mechanisms for m in needed)
        )

    # ------------------------------------------------------------ objects

    def _objects(self, attrs: dict[Attribute, Any]) -> list[tuple[KeyInfo, pkcs11.Object]]:
        """Our key objects matching ``attrs`` (secret keys and private keys only)."""
        found: list[tuple[KeyInfo, pkcs11.Object]] = []
        with _mapped("find objects"):
            for object_class in (ObjectClass.SECRET_KEY, ObjectClass.PRIVATE_KEY):
                query = {**attrs, Attribute.CLASS: object_class}
                for obj in self._session.get_objects(query):
                    info = _describe(obj)
                    if info is not None:
                        found.append((info, obj))
        return found

    def _versions(self, key_id: str) -> list[KeyInfo]:
        return sorted(
            (info for info, _ in self._objects({Attribute.LABEL: key_id})),
            key=lambda i: i.version,
        )

    def _all(self) -> list[KeyInfo]:
        return [info for info, _ in self._objects({})]

    def _key(self, info: KeyInfo, object_class: ObjectClass) -> pkcs11.Key:
        with _mapped("find key"):
            objs = list(
                self._session.get_objects(
                    {
                        Attribute.CLASS: object_class,
                        Attribute.LABEL: info.key_id,
                        Attribute.ID: _object_id(info),
                    }
                )
            )
        if len(objs) != 1 or not isinstance(objs[0], pkcs11.Key):
            raise KeyNotFoundError(info.key_id, info.version)
        return objs[0]

    def _create(self, info: KeyInfo, material: bytes | None) -> None:
        common: dict[Attribute, Any] = {
            Attribute.TOKEN: True,
            Attribute.LABEL: info.key_id,
            Attribute.ID: _object_id(info),
        }
        if info.algorithm is Algorithm.EC_P256:
            self._generate_ec(info, common)
            return
        key_type, bits = _SECRET_TYPES[info.algorithm]
        is_mac = info.usage is KeyUsage.MAC
        # A key-wrap key (a pad's TMK) only wraps: no encryption of anything else.
        is_wrap = info.usage is KeyUsage.KEY_WRAP
        flags: dict[Attribute, Any] = {
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.ENCRYPT: not (is_mac or is_wrap),
            Attribute.DECRYPT: not (is_mac or is_wrap),
            Attribute.SIGN: is_mac,
            Attribute.VERIFY: is_mac,
            Attribute.WRAP: is_wrap,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        with _mapped("create key"):
            if material is None:
                self._session.generate_key(
                    key_type,
                    bits,
                    label=info.key_id,
                    id=_object_id(info),
                    store=True,
                    capabilities=MechanismFlag(0),
                    template={**common, **flags},
                )
            else:
                self._session.create_object(
                    {
                        **common,
                        **flags,
                        Attribute.CLASS: ObjectClass.SECRET_KEY,
                        Attribute.KEY_TYPE: key_type,
                        Attribute.PRIVATE: True,
                        Attribute.VALUE: material,
                    }
                )

    def _generate_ec(self, info: KeyInfo, common: dict[Attribute, Any]) -> None:
        with _mapped("generate key pair"):
            parameters = self._session.create_domain_parameters(
                KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                local=True,
            )
            parameters.generate_keypair(
                store=True,
                label=info.key_id,
                id=_object_id(info),
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={**common, Attribute.VERIFY: True},
                private_template={
                    **common,
                    Attribute.SIGN: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.DERIVE: False,
                },
            )

    def _destroy(self, info: KeyInfo) -> None:
        with _mapped("destroy key"):
            for obj in list(
                self._session.get_objects(
                    {Attribute.LABEL: info.key_id, Attribute.ID: _object_id(info)}
                )
            ):
                obj.destroy()

    # ------------------------------------------------------------ primitives

    def _ecb(self, info: KeyInfo) -> Mechanism:
        return (
            Mechanism.DES3_ECB
            if info.algorithm in (Algorithm.TDES_2KEY, Algorithm.TDES_3KEY)
            else Mechanism.AES_ECB
        )

    def _block_encrypt(self, info: KeyInfo, data: bytes) -> bytes:
        key = self._key(info, ObjectClass.SECRET_KEY)
        with _mapped("encrypt"):
            return bytes(key.encrypt(data, mechanism=self._ecb(info)))  # type: ignore[attr-defined]

    def _block_decrypt(self, info: KeyInfo, data: bytes) -> bytes:
        key = self._key(info, ObjectClass.SECRET_KEY)
        with _mapped("decrypt"):
            return bytes(key.decrypt(data, mechanism=self._ecb(info)))  # type: ignore[attr-defined]

    def _aead_encrypt(self, info: KeyInfo, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        key = self._key(info, ObjectClass.SECRET_KEY)
        param = GCMParams(nonce, aad or None, _GCM_TAG_BITS)
        with _mapped("encrypt"):
            return bytes(
                key.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=param)  # type: ignore[attr-defined]
            )

    def _aead_decrypt(self, info: KeyInfo, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        key = self._key(info, ObjectClass.SECRET_KEY)
        param = GCMParams(nonce, aad or None, _GCM_TAG_BITS)
        try:
            return bytes(
                key.decrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=param)  # type: ignore[attr-defined]
            )
        except PKCS11Error:
            raise DecryptionError(info.key_id, info.version) from None

    def _hmac(self, info: KeyInfo, data: bytes) -> bytes:
        key = self._key(info, ObjectClass.SECRET_KEY)
        with _mapped("hmac"):
            return bytes(key.sign(data, mechanism=Mechanism.SHA256_HMAC))  # type: ignore[attr-defined]

    def _sign(self, info: KeyInfo, data: bytes) -> bytes:
        key = self._key(info, ObjectClass.PRIVATE_KEY)
        digest = hashlib.sha256(data).digest()
        with _mapped("sign"):
            raw = bytes(key.sign(digest, mechanism=Mechanism.ECDSA))  # type: ignore[attr-defined]
        r = int.from_bytes(raw[:_P256_COORDINATE], "big")
        s = int.from_bytes(raw[_P256_COORDINATE:], "big")
        return encode_dss_signature(r, s)

    def _verify(self, info: KeyInfo, data: bytes, signature: bytes) -> bool:
        key = self._key(info, ObjectClass.PUBLIC_KEY)
        try:
            r, s = decode_dss_signature(signature)
            raw = r.to_bytes(_P256_COORDINATE, "big") + s.to_bytes(_P256_COORDINATE, "big")
        except (ValueError, OverflowError):
            return False
        digest = hashlib.sha256(data).digest()
        with _mapped("verify"):
            return bool(key.verify(digest, raw, mechanism=Mechanism.ECDSA))  # type: ignore[attr-defined]

    def _public_key(self, info: KeyInfo) -> bytes:
        key = self._key(info, ObjectClass.PUBLIC_KEY)
        with _mapped("read public key"):
            point = bytes(key[Attribute.EC_POINT])
        # CKA_EC_POINT is a DER OCTET STRING around the point (some tokens give it bare).
        if len(point) == _P256_POINT + 2 and point[:2] == bytes((0x04, _P256_POINT)):
            point = point[2:]
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        return public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _object_id(info: KeyInfo) -> bytes:
    return f"v{info.version}.{info.usage.value}".encode("ascii")


def _describe(obj: pkcs11.Object) -> KeyInfo | None:
    """Our description of a token object, or None if it is not one of ours."""
    try:
        label = str(obj[Attribute.LABEL])
        match = _ID_RE.fullmatch(bytes(obj[Attribute.ID]))
        key_type = obj[Attribute.KEY_TYPE]
        if match is None:
            return None
        usage = KeyUsage(match.group(2).decode("ascii"))
        if key_type == KeyType.EC:
            algorithm = Algorithm.EC_P256
        elif key_type == KeyType.AES:
            length = int(obj[Attribute.VALUE_LEN])
            algorithm = Algorithm.AES_128 if length == 16 else Algorithm.AES_256  # noqa: PLR2004
        else:
            algorithm = {
                KeyType.DES2: Algorithm.TDES_2KEY,
                KeyType.DES3: Algorithm.TDES_3KEY,
                KeyType.GENERIC_SECRET: Algorithm.HMAC_SHA256,
            }[key_type]
    except (PKCS11Error, KeyError, ValueError):
        return None
    return KeyInfo(label, int(match.group(1)), algorithm, usage)

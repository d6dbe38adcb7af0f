"""Software key store: keys in one file, encrypted at rest under a master key.

File layout (all of it rewritten atomically on every change)::

    +-------+----------+-----------+----------------------------------------+
    | magic | salt     | nonce     | AES-256-GCM(JSON key list) || tag(16) |
    | 6 B   | 16 B     | 12 B      | variable                              |
    +-------+----------+-----------+----------------------------------------+

The file key is HKDF-SHA256(master key, salt, info="sscard-branchd keystore v1"),
with a fresh salt and nonce on every write; the magic and salt are associated
data. The master key (32 bytes or more) comes from an environment variable (hex)
or from a file (raw bytes or hex text). The store refuses to open a key file or
master key file that group or others can access in any way (``mode & 0o077``).

Writes go to a temporary file in the same directory (mode 0600), are fsync'ed,
renamed over the old file, and the directory is fsync'ed: a crash leaves either
the old or the new key list, never a mix. One process owns a key file: the
daemon; tools that rotate keys run while it is stopped or through it.

SM2 is not available: ``cryptography`` has no SM2 (see docs/keystore.md).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from security.keystore.base import KeyStore
from security.keystore.errors import (
    DecryptionError,
    KeyNotFoundError,
    KeyStoreCorruptError,
    MasterKeyError,
)
from security.keystore.model import Algorithm, KeyInfo, KeyUsage
from security.keystore.permissions import check_private_file

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["MASTER_KEY_ENV", "MasterKey", "SoftwareKeyStore"]

#: Environment variable holding the master key as hex (64 hex digits or more).
MASTER_KEY_ENV: Final = "BRANCHD_KEYSTORE_MASTER_KEY"

_MAGIC: Final = b"SSKS\x00\x01"
_SALT_SIZE: Final = 16
_NONCE_SIZE: Final = 12
_HEADER_SIZE: Final = len(_MAGIC) + _SALT_SIZE + _NONCE_SIZE
_MIN_MASTER_KEY: Final = 32  # bytes
_HKDF_INFO: Final = b"sscard-branchd keystore v1"
_PAYLOAD_FORMAT: Final = 1
_TDES_2KEY_LENGTH: Final = 16
_GCM_TAG: Final = 16


class MasterKey:
    """The key that encrypts the key file. Its bytes are never shown or returned."""

    __slots__ = ("_material", "source")

    def __init__(self, material: bytes, *, source: str) -> None:
        """Wrap master key bytes (32 or more); prefer :meth:`from_env` or :meth:`from_file`.

        Raises:
            MasterKeyError: Shorter than 32 bytes.
        """
        if len(material) < _MIN_MASTER_KEY:
            raise MasterKeyError(source, f"shorter than {_MIN_MASTER_KEY} bytes")
        self._material = bytes(material)
        self.source = source

    @classmethod
    def from_env(cls, variable: str = MASTER_KEY_ENV) -> Self:
        """Read the master key as hex from an environment variable.

        Raises:
            MasterKeyError: Unset, not hex, or too short.
        """
        value = os.environ.get(variable)
        if not value:
            raise MasterKeyError(f"${variable}", "not set")
        try:
            material = bytes.fromhex(value.strip())
        except ValueError:
            raise MasterKeyError(f"${variable}", "not hex") from None
        return cls(material, source=f"${variable}")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Self:
        """Read the master key from a file only its owner can access.

        The file holds raw bytes, or hex text (64 hex digits or more).

        Raises:
            InsecurePermissionsError: Group or others can access the file.
            MasterKeyError: Missing, empty or too short.
        """
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise MasterKeyError(str(path), f"cannot open ({exc.strerror})") from None
        with os.fdopen(fd, "rb") as file:
            check_private_file(path, os.fstat(file.fileno()))
            raw = file.read()
        text = raw.strip()
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            if len(text) >= 2 * _MIN_MASTER_KEY:
                return cls(bytes.fromhex(text.decode("ascii")), source=str(path))
        return cls(raw, source=str(path))

    @classmethod
    def create_file(cls, path: str | os.PathLike[str]) -> Self:
        """Create a new random master key file (hex text, mode 0600) and return it.

        Raises:
            FileExistsError: The file exists (never overwrite a master key).
        """
        path = Path(path)
        material = secrets.token_bytes(_MIN_MASTER_KEY)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(material.hex().encode("ascii") + b"\n")
            file.flush()
            os.fsync(file.fileno())
        return cls(material, source=str(path))

    def _derive(self, salt: bytes) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO)
        return hkdf.derive(self._material)

    def __repr__(self) -> str:
        """Name the source only."""
        return f"<MasterKey from {self.source}>"

    def __reduce__(self) -> tuple[Any, ...]:
        """Refuse pickling."""
        msg = "MasterKey cannot be pickled"
        raise TypeError(msg)


class _Entry:
    """One key version's material, kept in memory by the store only."""

    __slots__ = ("info", "material")

    def __init__(self, info: KeyInfo, material: bytes) -> None:
        self.info = info
        self.material = material

    def __repr__(self) -> str:
        return f"<key {self.info.key_id} v{self.info.version}>"


class SoftwareKeyStore(KeyStore):
    """Keys in an encrypted file; the default for ``branchd demo`` and unit tests.

    Open it with :meth:`open`.
    """

    backend: ClassVar[str] = "software"

    def __init__(
        self,
        path: Path,
        master_key: MasterKey,
        entries: list[_Entry],
        *,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        """Use :meth:`open`; this constructor trusts its arguments."""
        super().__init__(random=random)
        self._path = path
        self._master_key = master_key
        self._entries: dict[tuple[str, int], _Entry] = {
            (e.info.key_id, e.info.version): e for e in entries
        }

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        master_key: MasterKey,
        *,
        create: bool = False,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> Self:
        """Open (or with ``create``, create if missing) a key file.

        Args:
            path: The key file.
            master_key: The master key that encrypts it.
            create: Create an empty key file (mode 0600) if there is none.
            random: Random source for PIN block fill (tests inject a fixed one).

        Raises:
            InsecurePermissionsError: Group or others can access the file.
            KeyStoreCorruptError: Not a key file, damaged, or another master key.
            FileNotFoundError: Missing and ``create`` is false.
        """
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            if not create:
                raise
            store = cls(path, master_key, [], random=random)
            store._save()
            return store
        with os.fdopen(fd, "rb") as file:
            check_private_file(path, os.fstat(file.fileno()))
            blob = file.read()
        return cls(path, master_key, _decode(path, master_key, blob), random=random)

    @property
    def path(self) -> Path:
        """The key file."""
        return self._path

    @property
    def supported_algorithms(self) -> frozenset[Algorithm]:
        """Everything but SM2 (``cryptography`` has no SM2)."""
        return frozenset(Algorithm) - {Algorithm.SM2}

    # ------------------------------------------------------------ storage

    def _versions(self, key_id: str) -> list[KeyInfo]:
        return sorted(
            (e.info for (kid, _), e in self._entries.items() if kid == key_id),
            key=lambda i: i.version,
        )

    def _all(self) -> list[KeyInfo]:
        return [e.info for e in self._entries.values()]

    def _create(self, info: KeyInfo, material: bytes | None) -> None:
        if material is None:
            material = _generate(info.algorithm)
        self._entries[(info.key_id, info.version)] = _Entry(info, material)
        try:
            self._save()
        except BaseException:
            del self._entries[(info.key_id, info.version)]
            raise

    def _destroy(self, info: KeyInfo) -> None:
        entry = self._entries.pop((info.key_id, info.version))
        try:
            self._save()
        except BaseException:
            self._entries[(info.key_id, info.version)] = entry
            raise

    def _save(self) -> None:
        payload = json.dumps(
            {
                "format": _PAYLOAD_FORMAT,
                "keys": [
                    {
                        "key_id": e.info.key_id,
                        "version": e.info.version,
                        "algorithm": e.info.algorithm.value,
                        "usage": e.info.usage.value,
                        "material": base64.b64encode(e.material).decode("ascii"),
                    }
                    for e in self._entries.values()
                ],
            }
        ).encode()
        salt, nonce = os.urandom(_SALT_SIZE), os.urandom(_NONCE_SIZE)
        header = _MAGIC + salt
        sealed = AESGCM(self._master_key._derive(salt)).encrypt(nonce, payload, header)  # noqa: SLF001  # module-private helper
        _atomic_write(self._path, header + nonce + sealed)

    def _material(self, info: KeyInfo) -> bytes:
        entry = self._entries.get((info.key_id, info.version))
        if entry is None:
            raise KeyNotFoundError(info.key_id, info.version)
        return entry.material

    # ------------------------------------------------------------ primitives

    def _wrap(self, kek: KeyInfo, info: KeyInfo) -> bytes:
        """The key's material enciphered ECB under the KEK (one call, never stored)."""
        return self._block_encrypt(kek, self._material(info))

    def _block_encrypt(self, info: KeyInfo, data: bytes) -> bytes:
        cipher = Cipher(_block_cipher(info.algorithm, self._material(info)), modes.ECB())  # noqa: S305  # single PIN blocks, ISO 9564
        encryptor = cipher.encryptor()
        return encryptor.update(data) + encryptor.finalize()

    def _block_decrypt(self, info: KeyInfo, data: bytes) -> bytes:
        cipher = Cipher(_block_cipher(info.algorithm, self._material(info)), modes.ECB())  # noqa: S305  # single PIN blocks, ISO 9564
        decryptor = cipher.decryptor()
        return decryptor.update(data) + decryptor.finalize()

    def _aead_encrypt(self, info: KeyInfo, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        key = self._material(info)
        if info.algorithm is Algorithm.SM4_128:
            encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
            encryptor.authenticate_additional_data(aad)
            data = encryptor.update(plaintext) + encryptor.finalize()
            return data + encryptor.tag
        return AESGCM(key).encrypt(nonce, plaintext, aad)

    def _aead_decrypt(self, info: KeyInfo, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        key = self._material(info)
        try:
            if info.algorithm is Algorithm.SM4_128:
                body, tag = data[:-_GCM_TAG], data[-_GCM_TAG:]
                decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
                decryptor.authenticate_additional_data(aad)
                return decryptor.update(body) + decryptor.finalize()
            return AESGCM(key).decrypt(nonce, data, aad)
        except (InvalidTag, ValueError):
            raise DecryptionError(info.key_id, info.version) from None

    def _hmac(self, info: KeyInfo, data: bytes) -> bytes:
        digest = hashes.SM3() if info.algorithm is Algorithm.HMAC_SM3 else hashes.SHA256()
        mac = crypto_hmac.HMAC(self._material(info), digest)
        mac.update(data)
        return mac.finalize()

    def _private_key(self, info: KeyInfo) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_der_private_key(self._material(info), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):  # pragma: no cover - we wrote it
            raise KeyStoreCorruptError(self._path, "signing key is not an EC key")
        return key

    def _sign(self, info: KeyInfo, data: bytes) -> bytes:
        return self._private_key(info).sign(data, ec.ECDSA(hashes.SHA256()))

    def _verify(self, info: KeyInfo, data: bytes, signature: bytes) -> bool:
        try:
            self._private_key(info).public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except Exception:  # noqa: BLE001  # InvalidSignature, or malformed DER (ValueError)
            return False
        return True

    def _public_key(self, info: KeyInfo) -> bytes:
        return (
            self._private_key(info)
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


_GENERATED_LENGTHS: Final[Mapping[Algorithm, int]] = {
    Algorithm.AES_128: 16,
    Algorithm.AES_256: 32,
    Algorithm.SM4_128: 16,
    Algorithm.TDES_2KEY: 16,
    Algorithm.TDES_3KEY: 24,
    Algorithm.HMAC_SHA256: 32,
    Algorithm.HMAC_SM3: 32,
}


def _generate(algorithm: Algorithm) -> bytes:
    if algorithm is Algorithm.EC_P256:
        return ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    material = secrets.token_bytes(_GENERATED_LENGTHS[algorithm])
    while algorithm in (Algorithm.TDES_2KEY, Algorithm.TDES_3KEY) and (
        material[:8] == material[8:16] or material[-8:] == material[-16:-8]
    ):  # pragma: no cover - probability 2**-63
        material = secrets.token_bytes(_GENERATED_LENGTHS[algorithm])
    return material


def _block_cipher(algorithm: Algorithm, key: bytes) -> algorithms.AES | algorithms.SM4 | TripleDES:
    if algorithm in (Algorithm.TDES_2KEY, Algorithm.TDES_3KEY):
        # cryptography deprecates 16-byte TripleDES keys; K1||K2||K1 is the same cipher.
        return TripleDES(key + key[:8] if len(key) == _TDES_2KEY_LENGTH else key)
    if algorithm is Algorithm.SM4_128:
        return algorithms.SM4(key)
    return algorithms.AES(key)


def _decode(path: Path, master_key: MasterKey, blob: bytes) -> list[_Entry]:
    if len(blob) < _HEADER_SIZE + _GCM_TAG or not blob.startswith(_MAGIC):
        raise KeyStoreCorruptError(path, "not a key store file")
    salt = blob[len(_MAGIC) : len(_MAGIC) + _SALT_SIZE]
    nonce = blob[len(_MAGIC) + _SALT_SIZE : _HEADER_SIZE]
    try:
        payload = AESGCM(
            master_key._derive(salt)  # noqa: SLF001  # module-private helper
        ).decrypt(nonce, blob[_HEADER_SIZE:], blob[: len(_MAGIC) + _SALT_SIZE])
    except InvalidTag:
        raise KeyStoreCorruptError(path, "wrong master key, or the file is damaged") from None
    try:
        document = json.loads(payload)
        if document["format"] != _PAYLOAD_FORMAT:
            raise KeyStoreCorruptError(path, "unknown payload format")
        return [
            _Entry(
                KeyInfo(
                    str(item["key_id"]),
                    int(item["version"]),
                    Algorithm(item["algorithm"]),
                    KeyUsage(item["usage"]),
                ),
                base64.b64decode(item["material"], validate=True),
            )
            for item in document["keys"]
        ]
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise KeyStoreCorruptError(path, "malformed key list") from None


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, rename, fsync the directory."""
    directory = path.parent
    temp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

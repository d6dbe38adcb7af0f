"""The branch's key store, opened from the configuration, and its adapters.

Only the composition root opens key stores; everything else receives an
interface (for example :class:`gateway.audit.AuditSigner`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from security.keystore import (
    Algorithm,
    Ciphertext,
    KeyNotFoundError,
    KeyStore,
    KeyStoreError,
    KeyUsage,
    MasterKey,
    Signature,
    SoftwareKeyStore,
)
from security.keystore.errors import MasterKeyError

if TYPE_CHECKING:
    from gateway.config import Config

__all__ = ["KeyStoreSigner", "PersonalDataVault", "open_keystore"]


def open_keystore(config: Config, *, create: bool = False) -> KeyStore | None:
    """Open the configured key store (``None`` when none is configured).

    Raises:
        KeyStoreError: the store cannot be opened (permissions, wrong master key, ...).
    """
    if config.keystore is None:
        return None
    secret = config.keystore.master_key.get_secret_value().strip()
    try:
        material = bytes.fromhex(secret)
    except ValueError:
        raise MasterKeyError("keystore.master_key", "not hex") from None
    master = MasterKey(material, source="keystore.master_key")
    path = config.keystore_path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return SoftwareKeyStore.open(path, master, create=create)


class KeyStoreSigner:
    """Signs with the current version of one key; verifies with any live version."""

    def __init__(self, store: KeyStore, key_id: str, *, create: bool = False) -> None:
        """Use ``key_id``; with ``create``, make it (EC P-256) if the store lacks it."""
        self._store = store
        self._key_id = key_id
        if create:
            try:
                store.key_info(key_id)
            except KeyNotFoundError:
                store.generate_key(key_id, Algorithm.EC_P256, KeyUsage.SIGN)

    def sign(self, data: bytes) -> tuple[str, int, bytes]:
        """Sign ``data``; return key id, version and signature."""
        signature = self._store.sign(self._key_id, data)
        return signature.key_id, signature.key_version, signature.value

    def check(self, key_id: str, key_version: int, data: bytes, signature: bytes) -> bool:
        """Tell whether ``signature`` is valid for ``data`` under that key version."""
        try:
            self._store.verify(Signature(key_id, key_version, signature), data)
        except KeyStoreError:
            return False
        return True


class PersonalDataVault:
    """Encrypts personal data field by field and computes the identity-number blind index.

    Stored form of a field: ``key version (2 bytes, big-endian) || nonce (12) ||
    ciphertext || tag``, encrypted with AES-256-GCM under ``pii-encryption`` with
    the field name as associated data (a value cannot be moved to another
    column). The blind index is HMAC-SHA256 under ``pii-index`` of the
    normalised identity number: equal numbers give equal indexes, and nothing
    about the number can be learnt without the key. The index key is never
    rotated (that would orphan every index); the encryption key may be.
    """

    ENCRYPTION_KEY = "pii-encryption"
    INDEX_KEY = "pii-index"

    def __init__(self, store: KeyStore, *, create: bool = False) -> None:
        """Use ``store``; with ``create``, make the two keys if they are missing."""
        self._store = store
        if create:
            for key_id, algorithm, usage in (
                (self.ENCRYPTION_KEY, Algorithm.AES_256, KeyUsage.ENCRYPT),
                (self.INDEX_KEY, Algorithm.HMAC_SHA256, KeyUsage.MAC),
            ):
                try:
                    store.key_info(key_id)
                except KeyNotFoundError:
                    store.generate_key(key_id, algorithm, usage)

    def seal(self, field: str, text: str) -> bytes:
        """Encrypt ``text`` for the column ``field``."""
        sealed = self._store.encrypt(
            self.ENCRYPTION_KEY, text.encode(), associated_data=field.encode()
        )
        return sealed.key_version.to_bytes(2, "big") + sealed.nonce + sealed.data

    def open(self, field: str, blob: bytes) -> str:
        """Decrypt a value stored in the column ``field``."""
        version = int.from_bytes(blob[:2], "big")
        sealed = Ciphertext(self.ENCRYPTION_KEY, version, blob[2:14], blob[14:])
        return self._store.decrypt(sealed, associated_data=field.encode()).decode()

    def index(self, id_number: str) -> str:
        """The blind index of an identity number (case and spaces do not matter)."""
        normalised = id_number.replace(" ", "").upper()
        return self._store.mac(self.INDEX_KEY, b"aac002:" + normalised.encode()).value.hex()

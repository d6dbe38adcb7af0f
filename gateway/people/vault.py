"""The personal-data vault: fields sealed at rest, the identity number's blind index."""

from __future__ import annotations

from security.keystore import (
    Algorithm,
    Ciphertext,
    KeyNotFoundError,
    KeyStore,
    KeyUsage,
)

__all__ = ["PersonalDataVault"]


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
        return self.seal_bytes(field, text.encode())

    def open(self, field: str, blob: bytes) -> str:
        """Decrypt a value stored in the column ``field``."""
        return self.open_bytes(field, blob).decode()

    def seal_bytes(self, field: str, data: bytes) -> bytes:
        """Encrypt ``data`` (a photo) for the column ``field``."""
        sealed = self._store.encrypt(self.ENCRYPTION_KEY, data, associated_data=field.encode())
        return sealed.key_version.to_bytes(2, "big") + sealed.nonce + sealed.data

    def open_bytes(self, field: str, blob: bytes) -> bytes:
        """Decrypt bytes stored in the column ``field``."""
        version = int.from_bytes(blob[:2], "big")
        sealed = Ciphertext(self.ENCRYPTION_KEY, version, blob[2:14], blob[14:])
        return self._store.decrypt(sealed, associated_data=field.encode())

    def document_index(self, doc_type: str, number: str) -> str:
        """The blind index of a document's number (a PRC identity card's is the person's)."""
        if doc_type == "prc-id-card":
            return self.index(number)
        normalised = number.replace(" ", "").upper()
        return self._store.mac(self.INDEX_KEY, f"doc:{doc_type}:{normalised}".encode()).value.hex()

    def index(self, id_number: str) -> str:
        """The blind index of an identity number (case and spaces do not matter)."""
        normalised = id_number.replace(" ", "").upper()
        return self._store.mac(self.INDEX_KEY, b"aac002:" + normalised.encode()).value.hex()

"""The branch's key store, opened from the configuration, and its adapters.

Only the composition root opens key stores; everything else receives an
interface (for example :class:`gateway.audit.AuditSigner`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from security.keystore import (
    Algorithm,
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

__all__ = ["KeyStoreSigner", "open_keystore"]


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

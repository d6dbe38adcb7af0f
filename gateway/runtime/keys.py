"""Signing with a key of the branch's key store (audit checkpoints and the like).

Only the composition root opens key stores (:func:`gateway.assembly.open_keystore`);
everything else receives an interface (for example :class:`gateway.audit.log.AuditSigner`).
"""

from __future__ import annotations

from security.keystore import (
    Algorithm,
    KeyNotFoundError,
    KeyStore,
    KeyStoreError,
    KeyUsage,
    Signature,
)

__all__ = ["KeyStoreSigner"]


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

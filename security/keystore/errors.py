"""Errors raised by the key stores.

Every error is a :class:`KeyStoreError`, itself a
:class:`security.errors.SecurityError`. Errors carry key ids, versions, paths
and algorithm names in attributes; they never carry key material, PINs, PIN
blocks or plaintext, in their message, their ``repr`` or their attributes.

Families, by what the caller should do:

* the caller asked for something wrong: :class:`InvalidKeyIdError`,
  :class:`KeyNotFoundError`, :class:`KeyExistsError`, :class:`KeyUsageError`,
  :class:`KeyStateError`, :class:`InvalidKeyMaterialError`,
  :class:`UnsupportedAlgorithmError`;
* the data does not check out (tampered, wrong key, wrong associated data):
  :class:`DecryptionError`, :class:`VerificationError`;
* the store cannot be used as configured (fix the deployment):
  :class:`InsecurePermissionsError`, :class:`MasterKeyError`,
  :class:`KeyStoreCorruptError`, :class:`BackendError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from security.errors import SecurityError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "BackendError",
    "DecryptionError",
    "InsecurePermissionsError",
    "InvalidKeyIdError",
    "InvalidKeyMaterialError",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyStateError",
    "KeyStoreConfigError",
    "KeyStoreCorruptError",
    "KeyStoreError",
    "KeyUsageError",
    "MasterKeyError",
    "UnsupportedAlgorithmError",
    "VerificationError",
]


class KeyStoreError(SecurityError):
    """Root of every error raised by a key store."""


class InvalidKeyIdError(KeyStoreError):
    """A key id is not 1-64 characters of ``A-Z a-z 0-9 . _ -`` starting alphanumeric.

    Attributes:
        key_id: The refused key id.
    """

    def __init__(self, key_id: str) -> None:
        """Record the refused key id."""
        super().__init__(f"invalid key id: {key_id!r}")
        self.key_id = key_id


class KeyNotFoundError(KeyStoreError):
    """No such key, or no such (live) version of it.

    Attributes:
        key_id: The key asked for.
        version: The version asked for, ``None`` for "the current one".
    """

    def __init__(self, key_id: str, version: int | None = None) -> None:
        """Record what was asked for."""
        what = key_id if version is None else f"{key_id} v{version}"
        super().__init__(f"key not found: {what}")
        self.key_id = key_id
        self.version = version


class KeyExistsError(KeyStoreError):
    """A key with this id exists already: rotate it instead of generating it again.

    Attributes:
        key_id: The existing key.
    """

    def __init__(self, key_id: str) -> None:
        """Record the existing key id."""
        super().__init__(f"key exists: {key_id}")
        self.key_id = key_id


class KeyUsageError(KeyStoreError):
    """A key was used for an operation its algorithm or usage does not allow.

    Attributes:
        key_id: The key.
        operation: The refused operation (``"encrypt"``, ``"sign"``, ``"pin_block"``...).
        reason: Why, in a few words.
    """

    def __init__(self, key_id: str, operation: str, reason: str) -> None:
        """Record the key, the operation and the reason."""
        super().__init__(f"key {key_id} cannot be used for {operation}: {reason}")
        self.key_id = key_id
        self.operation = operation
        self.reason = reason


class KeyStateError(KeyStoreError):
    """The key's versions do not allow this (e.g. retiring the current version).

    Attributes:
        key_id: The key.
        version: The version concerned.
        reason: Why, in a few words.
    """

    def __init__(self, key_id: str, version: int, reason: str) -> None:
        """Record the key version and the reason."""
        super().__init__(f"key {key_id} v{version}: {reason}")
        self.key_id = key_id
        self.version = version
        self.reason = reason


class InvalidKeyMaterialError(KeyStoreError):
    """Imported key material has the wrong length or is weak (never shows the bytes).

    Attributes:
        algorithm: The algorithm the material was imported for.
        reason: Why it was refused.
    """

    def __init__(self, algorithm: str, reason: str) -> None:
        """Record the algorithm and the reason."""
        super().__init__(f"invalid {algorithm} key material: {reason}")
        self.algorithm = algorithm
        self.reason = reason


class UnsupportedAlgorithmError(KeyStoreError):
    """This backend cannot hold keys of this algorithm (e.g. SM4 on SoftHSM2).

    Attributes:
        algorithm: The algorithm asked for.
        backend: The backend's name (``"software"``, ``"pkcs11"``).
    """

    def __init__(self, algorithm: str, backend: str) -> None:
        """Record the algorithm and the backend."""
        super().__init__(f"the {backend} key store does not support {algorithm}")
        self.algorithm = algorithm
        self.backend = backend


class DecryptionError(KeyStoreError):
    """Authenticated decryption failed: wrong key, wrong associated data or tampered data.

    Attributes:
        key_id: The key used.
        version: The key version used.
    """

    def __init__(self, key_id: str, version: int) -> None:
        """Record the key version that failed to open the ciphertext."""
        super().__init__(f"decryption failed with {key_id} v{version}")
        self.key_id = key_id
        self.version = version


class VerificationError(KeyStoreError):
    """A signature or MAC does not verify.

    Attributes:
        key_id: The key used.
        version: The key version used.
    """

    def __init__(self, key_id: str, version: int) -> None:
        """Record the key version the check failed with."""
        super().__init__(f"verification failed with {key_id} v{version}")
        self.key_id = key_id
        self.version = version


class KeyStoreConfigError(KeyStoreError):
    """The key store cannot be opened as configured: fix the deployment."""


class InsecurePermissionsError(KeyStoreConfigError):
    """A key file or master key file is accessible by group or others.

    Attributes:
        path: The file.
        mode: Its permission bits (e.g. ``0o644``).
    """

    def __init__(self, path: Path, mode: int) -> None:
        """Record the file and its permission bits."""
        super().__init__(
            f"refusing to use {path}: mode {mode:04o} lets group or others access it; "
            f"run: chmod 600 {path}"
        )
        self.path = path
        self.mode = mode


class MasterKeyError(KeyStoreConfigError):
    """The master key is missing or malformed.

    Attributes:
        source: Where it was looked for (an environment variable name or a path).
        reason: What is wrong with it.
    """

    def __init__(self, source: str, reason: str) -> None:
        """Record the source and the reason."""
        super().__init__(f"master key from {source}: {reason}")
        self.source = source
        self.reason = reason


class KeyStoreCorruptError(KeyStoreConfigError):
    """The key file cannot be read: corrupt, truncated, or a different master key.

    Attributes:
        path: The key file.
        reason: What failed.
    """

    def __init__(self, path: Path, reason: str) -> None:
        """Record the file and the reason."""
        super().__init__(f"cannot open key store {path}: {reason}")
        self.path = path
        self.reason = reason


class BackendError(KeyStoreError):
    """The PKCS#11 module or token failed.

    Attributes:
        operation: What the store was doing.
        cause: The backend's error class name (e.g. ``"PinIncorrect"``).
    """

    def __init__(self, operation: str, cause: str) -> None:
        """Record the operation and the backend's error name."""
        super().__init__(f"key store backend failed during {operation}: {cause}")
        self.operation = operation
        self.cause = cause

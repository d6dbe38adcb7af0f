"""Peer-keys files: the envelope keys of the other parties, shared between processes.

The format is :mod:`protocols.platform.peers` (docs/protocols/platform.md,
"Envelope keys"). This module reads and writes such files (atomically, mode
0600, under a lock file; refused when group or others may access them) and
:class:`PeerKeysFile` serves them as :class:`~security.envelope.EnvelopeKeys`,
re-read when the file changes. The branch (``gateway.upstream``) and the
simulators share it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Final

import structlog

from protocols.platform.peers import (
    PeerKey,
    PeerKeysDecodeError,
    PeerKeysEncodeError,
    decode_peer_keys,
    encode_peer_keys,
    merge_peer_keys,
)
from security.errors import SecurityError
from security.suites import CryptoError, get_suite

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from security.envelope import SenderIdentity
    from security.suites import VerifyKey

__all__ = [
    "PeerKeysFile",
    "PeerKeysFileError",
    "identity_entry",
    "locked",
    "merge_peer_keys",
    "read_peer_keys",
    "write_peer_keys",
]

log = structlog.get_logger(__name__)

_PRIVATE_BITS: Final = 0o077
_MODE: Final = 0o600


class PeerKeysFileError(SecurityError):
    """A peer-keys or identity file cannot be used.

    Attributes:
        path: The file.
        reason: ``unreadable``, ``insecure_permissions``, ``not_a_file``,
            ``undecodable:<why>``, ``unwritable``.
    """

    def __init__(self, path: Path, reason: str) -> None:
        """Record the file and the reason."""
        super().__init__(f"key file {path}: {reason}")
        self.path = path
        self.reason = reason


def read_peer_keys(path: Path) -> list[PeerKey]:
    """The entries of a peer-keys (or identity) file.

    Raises:
        PeerKeysFileError: Missing, unreadable, accessible to group or others,
            or not a peer-keys document.
    """
    try:
        with path.open("rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise PeerKeysFileError(path, "not_a_file")
            if stat.S_IMODE(status.st_mode) & _PRIVATE_BITS:
                raise PeerKeysFileError(path, "insecure_permissions")
            data = handle.read()
    except OSError:
        raise PeerKeysFileError(path, "unreadable") from None
    try:
        return decode_peer_keys(data)
    except PeerKeysDecodeError as exc:
        raise PeerKeysFileError(path, f"undecodable:{exc.reason}") from None


def write_peer_keys(path: Path, entries: Iterable[PeerKey], *, private: bool = False) -> None:
    """Write ``entries`` atomically with mode 0600 (``private``: an identity file).

    Raises:
        PeerKeysFileError: The file cannot be written, or an entry is bad (or
            private in a shared file).
    """
    try:
        data = encode_peer_keys(entries, private=private)
    except PeerKeysEncodeError:
        raise PeerKeysFileError(path, "unwritable") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".peers-", suffix=".json")
        try:
            os.fchmod(fd, _MODE)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        raise PeerKeysFileError(path, "unwritable") from None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (writers of one file take turns)."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, _MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def identity_entry(identity: SenderIdentity, *, private: bool = False) -> PeerKey:
    """The entry of an envelope identity (with its signing key when ``private``)."""
    key = identity.signing_key
    return PeerKey(
        sender=identity.sender,
        suite=key.suite,
        key_id=identity.key_id,
        key_version=identity.key_version,
        public_key=key.public_key.encoded,
        aead_key=identity.aead_key,
        signing_key=get_suite(key.suite).signing_key_bytes(key) if private else None,
    )


class PeerKeysFile:
    """:class:`~security.envelope.EnvelopeKeys` from a peer-keys file, re-read on change.

    An entry whose public key does not load for its suite is skipped (and
    logged). When the file changes into something unusable, the keys read
    before stay in use and the problem is logged.
    """

    def __init__(self, path: Path, *, required: bool = False) -> None:
        """Read ``path`` now (a missing file is empty unless ``required``).

        Raises:
            PeerKeysFileError: ``required`` and the file is missing, or it is unusable.
        """
        self.path = path
        self._signature: tuple[int, int, int] | None = None
        self._keys: dict[tuple[str, str, int], tuple[VerifyKey, bytes]] = {}
        if required or path.exists():
            self._load(read_peer_keys(path))
            self._signature = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            status = self.path.stat()
        except OSError:
            return None
        return status.st_ino, status.st_mtime_ns, status.st_size

    def _load(self, entries: list[PeerKey]) -> None:
        keys: dict[tuple[str, str, int], tuple[VerifyKey, bytes]] = {}
        for entry in entries:
            try:
                verify = get_suite(entry.suite).load_verify_key(entry.public_key)
            except CryptoError:
                log.warning("peer_key_skipped", sender=entry.sender, key_id=entry.key_id)
                continue
            keys[entry.index] = (verify, entry.aead_key)
        self._keys = keys

    def refresh(self) -> None:
        """Re-read the file if it changed since the last read."""
        signature = self._stat()
        if signature is None or signature == self._signature:
            return
        try:
            self._load(read_peer_keys(self.path))
        except PeerKeysFileError as exc:
            log.warning("peer_keys_unusable", path=str(self.path), reason=exc.reason)
            return
        self._signature = signature
        log.info("peer_keys_loaded", path=str(self.path), entries=len(self._keys))

    @property
    def senders(self) -> list[tuple[str, str, int]]:
        """The (sender, key id, key version) of every key set held."""
        self.refresh()
        return sorted(self._keys)

    def verify_key(self, sender: str, key_id: str, key_version: int) -> VerifyKey | None:
        """The sender's verify key, or ``None``."""
        self.refresh()
        found = self._keys.get((sender, key_id, key_version))
        return None if found is None else found[0]

    def aead_key(self, sender: str, key_id: str, key_version: int) -> bytes | None:
        """The sender's AEAD key, or ``None``."""
        self.refresh()
        found = self._keys.get((sender, key_id, key_version))
        return None if found is None else found[1]

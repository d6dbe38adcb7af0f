"""The branch's envelope identity, kept encrypted under the key store.

The identity (a signing key of the configured suite and an AEAD key) is made
on first start and written to ``<data_dir>/envelope-identity.bin``, sealed
with the key store's ENCRYPT key ``envelope-identity-wrap`` (made if missing);
the file is written atomically with mode 0600. Only its public part (verify
key and AEAD key) goes to the peer-keys file.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Final

from gateway.upstream.errors import UpstreamError
from security.envelope import SenderIdentity
from security.keystore import Algorithm, Ciphertext, KeyNotFoundError, KeyStoreError, KeyUsage
from security.suites import CryptoError, get_suite

if TYPE_CHECKING:
    from security.keystore import KeyStore

__all__ = [
    "IDENTITY_FILE",
    "WRAP_KEY",
    "IdentityFileError",
    "load_or_create_identity",
]

#: The key store ENCRYPT key that seals the identity file.
WRAP_KEY: Final = "envelope-identity-wrap"
#: The identity file's name under ``data_dir``.
IDENTITY_FILE: Final = "envelope-identity.bin"
#: The key id of the branch's envelope key set.
KEY_ID: Final = "branch-env"
_CONTEXT: Final = b"sscard-branchd:envelope-identity:v1"
_MODE: Final = 0o600


class IdentityFileError(UpstreamError):
    """The identity file cannot be used.

    Attributes:
        path: The file.
        reason: ``unreadable``, ``undecryptable``, ``undecodable``, ``unwritable``.
    """

    def __init__(self, path: Path, reason: str) -> None:
        """Record the file and the reason."""
        super().__init__(f"envelope identity file {path}: {reason}", "identity")
        self.path = path
        self.reason = reason


def _wrap_key(store: KeyStore) -> None:
    try:
        store.key_info(WRAP_KEY)
    except KeyNotFoundError:
        store.generate_key(WRAP_KEY, Algorithm.AES_256, KeyUsage.ENCRYPT)


def _encode(identity: SenderIdentity) -> bytes:
    suite = get_suite(identity.signing_key.suite)
    return json.dumps(
        {
            "sender": identity.sender,
            "key_id": identity.key_id,
            "key_version": identity.key_version,
            "suite": identity.signing_key.suite,
            "signing_key": suite.signing_key_bytes(identity.signing_key).hex(),
            "aead_key": identity.aead_key.hex(),
        }
    ).encode()


def _decode(path: Path, data: bytes) -> SenderIdentity:
    try:
        fields = json.loads(data)
        suite = get_suite(str(fields["suite"]))
        return SenderIdentity(
            sender=str(fields["sender"]),
            key_id=str(fields["key_id"]),
            key_version=int(fields["key_version"]),
            signing_key=suite.load_signing_key(bytes.fromhex(fields["signing_key"])),
            aead_key=bytes.fromhex(fields["aead_key"]),
        )
    except (ValueError, KeyError, TypeError, CryptoError):
        raise IdentityFileError(path, "undecodable") from None


def _read(path: Path, store: KeyStore) -> SenderIdentity:
    try:
        sealed = json.loads(path.read_bytes())
        ciphertext = Ciphertext(
            WRAP_KEY,
            int(sealed["key_version"]),
            base64.b64decode(sealed["nonce"]),
            base64.b64decode(sealed["data"]),
        )
    except OSError:
        raise IdentityFileError(path, "unreadable") from None
    except (ValueError, KeyError, TypeError):
        raise IdentityFileError(path, "undecodable") from None
    try:
        plain = store.decrypt(ciphertext, associated_data=_CONTEXT)
    except KeyStoreError:
        raise IdentityFileError(path, "undecryptable") from None
    return _decode(path, plain)


def _write(path: Path, store: KeyStore, identity: SenderIdentity) -> None:
    sealed = store.encrypt(WRAP_KEY, _encode(identity), associated_data=_CONTEXT)
    document = json.dumps(
        {
            "v": 1,
            "key_version": sealed.key_version,
            "nonce": base64.b64encode(sealed.nonce).decode(),
            "data": base64.b64encode(sealed.data).decode(),
        }
    ).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".identity-", suffix=".tmp")
        try:
            os.fchmod(fd, _MODE)
            with os.fdopen(fd, "wb") as handle:
                handle.write(document)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        raise IdentityFileError(path, "unwritable") from None


def load_or_create_identity(
    data_dir: Path, store: KeyStore, *, sender: str, suite: str
) -> SenderIdentity:
    """The branch's envelope identity: read it, or make and store it on first start.

    Args:
        data_dir: Where the identity file lives.
        store: The key store that seals it.
        sender: The branch's envelope name (its branch id).
        suite: The configured crypto suite (``gm`` or ``intl``).

    Raises:
        IdentityFileError: The file exists but cannot be used, or cannot be written.
    """
    _wrap_key(store)
    path = data_dir / IDENTITY_FILE
    if path.exists():
        return _read(path, store)
    crypto = get_suite(suite)
    identity = SenderIdentity(
        sender=sender,
        key_id=KEY_ID,
        key_version=1,
        signing_key=crypto.generate_signing_key(),
        aead_key=os.urandom(crypto.aead_key_size),
    )
    _write(path, store, identity)
    return identity

"""The branch's side of the peer-keys file: trust the upstream systems, publish our keys.

The file handling lives in :mod:`security.peerkeys` (shared with the
simulators): :class:`PeerKeysFile` is re-read when the file changes (a
simulator that starts after the daemon adds its keys);
:func:`publish_identity` adds the branch's public key set (and its AEAD key)
to the file. The file holds AEAD keys, so it is written with mode 0600 and
refused when group or others may access it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from security.peerkeys import (
    PeerKeysFile,
    PeerKeysFileError,
    identity_entry,
    locked,
    merge_peer_keys,
    read_peer_keys,
    write_peer_keys,
)

if TYPE_CHECKING:
    from pathlib import Path

    from security.envelope import SenderIdentity

__all__ = [
    "PeerKeysFile",
    "PeerKeysFileError",
    "identity_entry",
    "publish_identity",
    "read_peer_keys",
    "write_peer_keys",
]


def publish_identity(path: Path, identity: SenderIdentity) -> None:
    """Add (or replace) the branch's entry in the shared peer-keys file.

    Raises:
        PeerKeysFileError: The file exists but cannot be used, or cannot be written.
    """
    try:
        with locked(path):
            existing = read_peer_keys(path) if path.exists() else []
            write_peer_keys(path, merge_peer_keys(existing, [identity_entry(identity)]))
    except OSError:
        raise PeerKeysFileError(path, "unwritable") from None

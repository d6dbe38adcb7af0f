"""The simulators' side of the peer-keys file, and their own identity files.

The peer-keys file itself is handled by :mod:`security.peerkeys` (shared with
the branch); :func:`publish_identities` adds the simulator's public key sets (and their
AEAD keys) to it. :func:`load_identities` / :func:`save_identities` keep a
simulator's private identities (signing keys) in a file of its own, so that
it keeps its keys across runs. Both kinds of file are written with mode 0600
and refused when group or others may access them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import structlog

from protocols.platform.peers import merge_peer_keys
from security.envelope import SenderIdentity
from security.peerkeys import (
    PeerKeysFile,
    PeerKeysFileError,
    identity_entry,
    locked,
    read_peer_keys,
    write_peer_keys,
)
from security.suites import CryptoError, get_suite

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path


__all__ = [
    "PeerKeysFile",
    "PeerKeysFileError",
    "generate_identity",
    "identity_entry",
    "load_identities",
    "publish_identities",
    "read_peer_keys",
    "save_identities",
    "write_peer_keys",
]

log = structlog.get_logger(__name__)


def generate_identity(sender: str, key_id: str, suite: str, key_version: int = 1) -> SenderIdentity:
    """A new envelope identity: a fresh signing key and AEAD key of ``suite``."""
    crypto = get_suite(suite)
    return SenderIdentity(
        sender=sender,
        key_id=key_id,
        key_version=key_version,
        signing_key=crypto.generate_signing_key(),
        aead_key=os.urandom(crypto.aead_key_size),
    )


def load_identities(path: Path) -> dict[str, SenderIdentity]:
    """The identities of an identity file, by sender name.

    Raises:
        PeerKeysFileError: Unusable file, an entry without a signing key, or a
            signing key that does not load.
    """
    identities: dict[str, SenderIdentity] = {}
    for entry in read_peer_keys(path):
        if entry.signing_key is None:
            raise PeerKeysFileError(path, "entry_without_signing_key")
        try:
            signing_key = get_suite(entry.suite).load_signing_key(entry.signing_key)
        except CryptoError:
            raise PeerKeysFileError(path, "bad_signing_key") from None
        identities[entry.sender] = SenderIdentity(
            sender=entry.sender,
            key_id=entry.key_id,
            key_version=entry.key_version,
            signing_key=signing_key,
            aead_key=entry.aead_key,
        )
    return identities


def save_identities(path: Path, identities: Iterable[SenderIdentity]) -> None:
    """Write an identity file (signing keys included, mode 0600).

    Raises:
        PeerKeysFileError: It cannot be written.
    """
    write_peer_keys(path, [identity_entry(i, private=True) for i in identities], private=True)


def publish_identities(path: Path, identities: Iterable[SenderIdentity]) -> None:
    """Add (or replace) these identities' public entries in the shared peer-keys file.

    Raises:
        PeerKeysFileError: The file exists but cannot be used, or cannot be written.
    """
    entries = [identity_entry(identity) for identity in identities]
    try:
        with locked(path):
            existing = read_peer_keys(path) if path.exists() else []
            write_peer_keys(path, merge_peer_keys(existing, entries))
    except OSError:
        raise PeerKeysFileError(path, "unwritable") from None


def prepare_identities(
    path: Path, wanted: dict[str, str], suite: str, *, create: bool
) -> dict[str, SenderIdentity]:
    """A simulator's identities from its identity file, made first when asked.

    Args:
        path: The identity file.
        wanted: Sender name -> key id, for every identity the simulator needs.
        suite: The envelope suite they must be of.
        create: Generate the missing ones and save the file.

    Raises:
        PeerKeysFileError: Unusable file, an identity of another suite
            (``wrong_suite``), or one missing without ``create`` (``no_identity``).
    """
    found = load_identities(path) if path.exists() else {}
    if any(found[name].signing_key.suite != suite for name in wanted if name in found):
        raise PeerKeysFileError(path, "wrong_suite")
    missing = [name for name in wanted if name not in found]
    if missing and not create:
        raise PeerKeysFileError(path, "no_identity")
    if missing:
        for name in missing:
            found[name] = generate_identity(name, wanted[name], suite)
        save_identities(path, found.values())
    return {name: found[name] for name in wanted}

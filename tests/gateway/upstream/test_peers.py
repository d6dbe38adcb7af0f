"""The peer-keys file: format, permissions, identities, and re-reading on change."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.upstream import PeerKeysFile, PeerKeysFileError, publish_identity, read_peer_keys
from gateway.upstream.peers import identity_entry
from protocols.platform.peers import (
    PeerKey,
    PeerKeysDecodeError,
    PeerKeysEncodeError,
    decode_peer_keys,
    encode_peer_keys,
)
from simulators.platform import peers as sim_peers
from tests.gateway.upstream.conftest import make_identity

if TYPE_CHECKING:
    from pathlib import Path


def test_round_trip_and_private_entries() -> None:
    """Entries survive encode/decode; a signing key goes only into an identity file."""
    identity = make_identity()
    public = identity_entry(identity)
    assert decode_peer_keys(encode_peer_keys([public])) == [public]
    private = sim_peers.identity_entry(identity, private=True)
    assert private.public() == public
    with pytest.raises(PeerKeysEncodeError):
        encode_peer_keys([private])
    assert decode_peer_keys(encode_peer_keys([private], private=True)) == [private]
    with pytest.raises(PeerKeysEncodeError):
        encode_peer_keys([public, public])


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"{", "not_json"),
        (b'{"format": "other", "version": 1, "keys": []}', "bad_format"),
        (b'{"format": "sscard-branchd/peer-keys", "version": 1, "keys": [1]}', "bad_entry"),
    ],
)
def test_decode_refusals(document: bytes, reason: str) -> None:
    """Broken documents are refused with a reason."""
    with pytest.raises(PeerKeysDecodeError) as info:
        decode_peer_keys(document)
    assert info.value.reason == reason


def test_bad_aead_key_length_is_refused() -> None:
    """A gm entry with a 32-byte AEAD key does not decode."""
    entry = identity_entry(make_identity())
    text = encode_peer_keys([entry]).replace(entry.aead_key.hex().encode(), b"00" * 32)
    with pytest.raises(PeerKeysDecodeError) as info:
        decode_peer_keys(text)
    assert info.value.reason == "bad_aead_key"


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_decoder_raises_only_its_error(data: bytes) -> None:
    """Any bytes decode or raise PeerKeysDecodeError, nothing else."""
    try:
        entries = decode_peer_keys(data)
    except PeerKeysDecodeError:
        return
    assert all(isinstance(e, PeerKey) for e in entries)


def test_file_is_private_and_refused_when_readable(tmp_path: Path) -> None:
    """Published files have mode 0600; one readable by others is refused."""
    path = tmp_path / "peer-keys.json"
    publish_identity(path, make_identity())
    assert path.stat().st_mode & 0o777 == 0o600
    assert [e.sender for e in read_peer_keys(path)] == ["T-652300-01"]
    path.chmod(0o644)
    with pytest.raises(PeerKeysFileError) as info:
        read_peer_keys(path)
    assert info.value.reason == "insecure_permissions"


def test_keys_are_reread_when_the_file_changes(tmp_path: Path) -> None:
    """A key published after the reader started is found; a replaced one is updated."""
    path = tmp_path / "peer-keys.json"
    branch = make_identity()
    publish_identity(path, branch)
    keys = PeerKeysFile(path)
    platform = make_identity("PLATFORM-650000", "platform-sig")
    assert keys.verify_key(platform.sender, "platform-sig", 1) is None
    sim_peers.publish_identities(path, [platform])
    found = keys.verify_key(platform.sender, "platform-sig", 1)
    assert found is not None
    assert found.encoded == platform.signing_key.public_key.encoded
    assert keys.aead_key(branch.sender, branch.key_id, 1) == branch.aead_key
    again = make_identity("PLATFORM-650000", "platform-sig")
    sim_peers.publish_identities(path, [again])
    assert keys.aead_key(again.sender, "platform-sig", 1) == again.aead_key
    assert len(keys.senders) == 2


def test_identities_are_made_once_and_kept(tmp_path: Path) -> None:
    """prepare_identities makes missing identities when asked and reloads them after."""
    path = tmp_path / "identity.json"
    wanted = {"BANK-CORE": "bank-sig"}
    with pytest.raises(sim_peers.PeerKeysFileError) as info:
        sim_peers.prepare_identities(path, wanted, "gm", create=False)
    assert info.value.reason == "no_identity"
    made = sim_peers.prepare_identities(path, wanted, "gm", create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    again = sim_peers.prepare_identities(path, wanted, "gm", create=False)
    assert again["BANK-CORE"].aead_key == made["BANK-CORE"].aead_key
    assert (
        again["BANK-CORE"].signing_key.public_key.encoded
        == made["BANK-CORE"].signing_key.public_key.encoded
    )
    with pytest.raises(sim_peers.PeerKeysFileError) as info:
        sim_peers.prepare_identities(path, wanted, "intl", create=True)
    assert info.value.reason == "wrong_suite"

"""The software key store's file: encryption at rest, permissions, master keys, atomic writes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from security.keystore import (
    MASTER_KEY_ENV,
    Algorithm,
    InsecurePermissionsError,
    KeyStoreCorruptError,
    KeyUsage,
    MasterKey,
    MasterKeyError,
    SoftwareKeyStore,
)

if TYPE_CHECKING:
    from pathlib import Path

KEY = bytes(range(100, 132))


@pytest.fixture
def master() -> MasterKey:
    """A random master key."""
    return MasterKey(os.urandom(32), source="test")


def test_new_file_is_private_and_encrypted(tmp_path: Path, master: MasterKey) -> None:
    """The key file is created 0600 and holds neither key bytes nor key ids in clear."""
    path = tmp_path / "keys.bin"
    store = SoftwareKeyStore.open(path, master, create=True)
    store.import_key("person-data", Algorithm.AES_256, KeyUsage.ENCRYPT, KEY)
    assert path.stat().st_mode & 0o777 == 0o600
    blob = path.read_bytes()
    assert KEY not in blob
    assert KEY.hex().encode() not in blob
    assert b"person-data" not in blob
    assert blob.startswith(b"SSKS")


def test_missing_file_without_create_raises(tmp_path: Path, master: MasterKey) -> None:
    """Opening a missing key file without create is an error, not an empty store."""
    with pytest.raises(FileNotFoundError):
        SoftwareKeyStore.open(tmp_path / "absent.bin", master)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o610])
def test_refuses_group_or_other_access(tmp_path: Path, master: MasterKey, mode: int) -> None:
    """A key file readable, writable or executable by group or others is refused."""
    path = tmp_path / "keys.bin"
    SoftwareKeyStore.open(path, master, create=True)
    path.chmod(mode)
    with pytest.raises(InsecurePermissionsError) as caught:
        SoftwareKeyStore.open(path, master)
    assert caught.value.path == path
    assert caught.value.mode == mode
    assert "chmod 600" in str(caught.value)


def test_wrong_master_key_or_damage_is_reported(tmp_path: Path, master: MasterKey) -> None:
    """Another master key, a flipped byte or a foreign file raise KeyStoreCorruptError."""
    path = tmp_path / "keys.bin"
    SoftwareKeyStore.open(path, master, create=True).generate_key(
        "k", Algorithm.AES_256, KeyUsage.ENCRYPT
    )
    with pytest.raises(KeyStoreCorruptError) as caught:
        SoftwareKeyStore.open(path, MasterKey(os.urandom(32), source="other"))
    assert caught.value.path == path
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(KeyStoreCorruptError):
        SoftwareKeyStore.open(path, master)
    path.write_bytes(b"not a key store")
    with pytest.raises(KeyStoreCorruptError):
        SoftwareKeyStore.open(path, master)


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path: Path, master: MasterKey) -> None:
    """Every change replaces the file whole; no temporary file is left behind."""
    path = tmp_path / "keys.bin"
    store = SoftwareKeyStore.open(path, master, create=True)
    # Each write makes a new file (its temporary one, made while the old one exists)
    # and renames it over the old: a new inode each time. (Compared write by write: a
    # freed inode number may come back for a later file.)
    writes = (
        lambda: store.generate_key("k", Algorithm.AES_256, KeyUsage.ENCRYPT),
        lambda: store.rotate_key("k"),
        lambda: store.retire_key("k", 1),
    )
    for write in writes:
        inode_before = path.stat().st_ino
        write()
        assert path.stat().st_ino != inode_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.bin"]
    assert [i.version for i in SoftwareKeyStore.open(path, master).list_keys()] == [2]


def test_failed_write_keeps_memory_and_file_consistent(
    tmp_path: Path, master: MasterKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If saving fails the new key is not kept in memory and the old file is intact."""
    path = tmp_path / "keys.bin"
    store = SoftwareKeyStore.open(path, master, create=True)
    before = path.read_bytes()

    def broken_fsync(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        store.generate_key("k", Algorithm.AES_256, KeyUsage.ENCRYPT)
    monkeypatch.undo()
    assert store.list_keys() == []
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.bin"]


def test_master_key_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The master key is read as hex from the environment; bad values are refused."""
    material = os.urandom(32)
    monkeypatch.setenv(MASTER_KEY_ENV, material.hex())
    master = MasterKey.from_env()
    assert material.hex() not in repr(master)
    SoftwareKeyStore.open(tmp_path / "k.bin", master, create=True)
    assert SoftwareKeyStore.open(tmp_path / "k.bin", MasterKey.from_env()).list_keys() == []
    for value, reason in [("zz" * 32, "not hex"), ("ab" * 16, "shorter")]:
        monkeypatch.setenv(MASTER_KEY_ENV, value)
        with pytest.raises(MasterKeyError) as caught:
            MasterKey.from_env()
        assert reason in caught.value.reason
        assert value not in str(caught.value)
    monkeypatch.delenv(MASTER_KEY_ENV)
    with pytest.raises(MasterKeyError, match="not set"):
        MasterKey.from_env()


def test_master_key_file(tmp_path: Path) -> None:
    """A created master key file is 0600, reloads to the same key, and is checked for mode."""
    path = tmp_path / "master.key"
    created = MasterKey.create_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    SoftwareKeyStore.open(tmp_path / "k.bin", created, create=True).generate_key(
        "k", Algorithm.AES_256, KeyUsage.ENCRYPT
    )
    loaded = MasterKey.from_file(path)
    assert len(SoftwareKeyStore.open(tmp_path / "k.bin", loaded).list_keys()) == 1
    with pytest.raises(FileExistsError):
        MasterKey.create_file(path)
    path.chmod(0o644)
    with pytest.raises(InsecurePermissionsError):
        MasterKey.from_file(path)
    with pytest.raises(MasterKeyError):
        MasterKey.from_file(tmp_path / "missing.key")


def test_raw_master_key_file(tmp_path: Path) -> None:
    """A master key file may hold raw bytes instead of hex."""
    path = tmp_path / "raw.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, os.urandom(48))
    os.close(fd)
    master = MasterKey.from_file(path)
    SoftwareKeyStore.open(tmp_path / "k.bin", master, create=True)
    assert SoftwareKeyStore.open(tmp_path / "k.bin", MasterKey.from_file(path)).list_keys() == []


def test_master_key_refuses_pickling() -> None:
    """A master key cannot be pickled."""
    import pickle  # noqa: PLC0415

    with pytest.raises(TypeError):
        pickle.dumps(MasterKey(os.urandom(32), source="test"))

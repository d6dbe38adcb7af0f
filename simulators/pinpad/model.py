"""The simulated PIN pad's keys and settings.

The pad holds a terminal master key (TMK), loaded at the key ceremony (here:
the configuration), and the PIN key (TPK) the branch loads enciphered under the
TMK (LOAD_KEY). :class:`PadKeys` deciphers and checks a loaded key, and builds
PIN blocks under it through a private software key store, the only code allowed
to see a clear PIN block; the store's file lives in a private temporary
directory that :meth:`PadKeys.close` removes.

:func:`encipher_key` plays the key ceremony's other half for the demo and the
tests: it enciphers a TPK under a TMK and computes its check value.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocols.pinpad.commands import KCV_LENGTH, LoadKeyParams
from protocols.pinpad.frames import KeyAlgorithm
from security.keystore import (
    Algorithm,
    KeyStoreError,
    KeyUsage,
    MasterKey,
    PinBlockFormat,
    SoftwareKeyStore,
)

__all__ = [
    "DEMO_TMK",
    "Fault",
    "KeyRefusedError",
    "PadKeys",
    "PinPadSimConfig",
    "encipher_key",
    "key_check_value",
]

#: The TMK the demo pad ships with (a development value; never a real key).
DEMO_TMK: Final = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PAD_TEXT: Final = "SSC-EPP-SIM 1.0.0"
_TPK_ID: Final = "tpk"
_STORE_ALGORITHMS: Final = {
    KeyAlgorithm.TDES_2KEY: Algorithm.TDES_2KEY,
    KeyAlgorithm.SM4: Algorithm.SM4_128,
    KeyAlgorithm.AES_128: Algorithm.AES_128,
}


class Fault(StrEnum):
    """Faults to inject, in the configuration or at run time."""

    NOISE = "noise"  # garbage bytes before the next reply (the host resyncs)
    SILENT = "silent"  # the next request is never answered
    LINK_DROP = "link_drop"  # the link drops when the next request arrives


@dataclass(slots=True)
class PinPadSimConfig:
    """Keys and behaviour of a simulated PIN pad.

    Attributes:
        tmk: The terminal master key (16 bytes; not in the ``repr``).
        algorithm: The TMK's algorithm (a TPK loaded under it is of the same).
        auto_pin: Answer every entry with this PIN and ENTER when no key press
            is scripted (the demo); ``None``: wait for presses.
        text: Model and firmware reported by INFO.
        faults: Faults active from the start.
        link: A symlink kept pointing at the current pty (stable across restores).
    """

    tmk: bytes | None = field(default=DEMO_TMK, repr=False)
    algorithm: KeyAlgorithm = KeyAlgorithm.TDES_2KEY
    auto_pin: str | None = field(default=None, repr=False)
    text: str = PAD_TEXT
    faults: frozenset[Fault] = frozenset()
    link: str | None = None


# ECB is what key-under-key encipherment (ANSI X9.24 key blocks without a
# TR-31 header), check values and ISO 9564 PIN blocks use: one block each.
def _cipher(algorithm: KeyAlgorithm, key: bytes) -> Cipher[modes.ECB]:
    if algorithm is KeyAlgorithm.TDES_2KEY:
        # cryptography deprecates 16-byte TripleDES keys; K1||K2||K1 is the same cipher.
        return Cipher(TripleDES(key + key[:8]), modes.ECB())  # noqa: S305 (single-block key and PIN encipherment)
    if algorithm is KeyAlgorithm.SM4:
        return Cipher(algorithms.SM4(key), modes.ECB())  # noqa: S305 (single-block key and PIN encipherment)
    return Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305 (single-block key and PIN encipherment)


def _ecb(algorithm: KeyAlgorithm, key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    cipher = _cipher(algorithm, key)
    context = cipher.decryptor() if decrypt else cipher.encryptor()
    return context.update(data) + context.finalize()


def key_check_value(algorithm: KeyAlgorithm, key: bytes) -> str:
    """The key's check value: E(zero block) under it, first 3 bytes, upper-case hex."""
    return _ecb(algorithm, key, bytes(algorithm.block_size))[:KCV_LENGTH].hex().upper()


def encipher_key(tmk: bytes, algorithm: KeyAlgorithm, key: bytes) -> LoadKeyParams:
    """Encipher ``key`` under ``tmk`` (ECB) for LOAD_KEY, with the key's check value."""
    return LoadKeyParams(algorithm, _ecb(algorithm, tmk, key), key_check_value(algorithm, key))


class KeyRefusedError(Exception):
    """LOAD_KEY or an entry cannot use the keys (the pad answers with a status)."""


class PadKeys:
    """The pad's key memory: the TMK and the loaded PIN key."""

    def __init__(self, tmk: bytes | None, algorithm: KeyAlgorithm) -> None:
        """Hold the TMK; no PIN key is loaded until :meth:`load`."""
        self._tmk = tmk
        self.algorithm = algorithm
        self.key_check_value: str | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="pinpad-sim-"))
        self._store = SoftwareKeyStore.open(
            self._dir / "pad-keys.bin",
            MasterKey(os.urandom(32), source="pinpad simulator"),
            create=True,
        )

    @property
    def tmk_loaded(self) -> bool:
        """Whether the pad has a TMK."""
        return self._tmk is not None

    def load(self, params: LoadKeyParams) -> str:
        """Decipher a TPK under the TMK, check its KCV, keep it; return the KCV.

        Raises:
            KeyRefusedError: No TMK, another algorithm, a check value mismatch, or
                an unusable key (3DES parts that repeat).
        """
        if self._tmk is None or params.algorithm is not self.algorithm:
            raise KeyRefusedError
        key = _ecb(self.algorithm, self._tmk, params.wrapped, decrypt=True)
        kcv = key_check_value(self.algorithm, key)
        if kcv != params.key_check_value:
            raise KeyRefusedError
        try:
            self._store.import_key(_TPK_ID, _STORE_ALGORITHMS[self.algorithm], KeyUsage.PIN, key)
        except KeyStoreError as exc:
            raise KeyRefusedError from exc
        self.key_check_value = kcv
        return kcv

    def pin_block(self, pin: str, account: str, pin_block_format: int) -> bytes:
        """The PIN block of ``pin`` for ``account``, enciphered under the loaded PIN key.

        Raises:
            KeyRefusedError: No PIN key loaded.
            KeyStoreError: The format does not fit the key.
            PinBlockError: The PIN or the account does not fit the format.
        """
        if self.key_check_value is None:
            raise KeyRefusedError
        block = self._store.encrypt_pin_block(
            _TPK_ID, pin, account, PinBlockFormat(pin_block_format)
        )
        return block.ciphertext_bytes()

    def close(self) -> None:
        """Forget the keys: remove the private key store."""
        self._store.close()
        shutil.rmtree(self._dir, ignore_errors=True)

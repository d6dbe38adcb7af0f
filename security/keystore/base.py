"""The key store interface and the logic every backend shares.

A :class:`KeyStore` holds named keys, each with numbered versions. The highest
live version of a key is *current*: it signs, encrypts, MACs and encrypts PIN
blocks. Older versions still verify, decrypt and translate until they are
retired, which destroys them. Results (:class:`Signature`, :class:`Ciphertext`,
:class:`Mac`, :class:`EncryptedPinBlock`) name the key version that made them.

No method returns secret key material; PINs enter only through
:meth:`KeyStore.encrypt_pin_block` (PIN pad simulators and tests) and leave
never. The API is synchronous: software crypto is CPU-bound and takes
microseconds, and SoftHSM2 runs in-process. A network HSM behind PKCS#11 can
block: call the store through ``asyncio.to_thread`` there.

Backends implement the ``_``-prefixed primitives; the public methods check key
ids, usages, algorithms and versions, hold the store's lock, and are the same
for every backend.
"""

from __future__ import annotations

import abc
import hmac
import os
import secrets
import threading
from typing import TYPE_CHECKING, ClassVar, Final, Self

from protocols import sscard
from security import pinblock
from security.keystore.cardpin import CardPinCommand
from security.keystore.errors import (
    InvalidKeyMaterialError,
    KeyExistsError,
    KeyNotFoundError,
    KeyStateError,
    KeyUsageError,
    UnsupportedAlgorithmError,
    VerificationError,
)
from security.keystore.model import (
    Algorithm,
    Ciphertext,
    EncryptedPinBlock,
    KeyInfo,
    KeyUsage,
    Mac,
    PinBlockFormat,
    Signature,
    WrappedKey,
    check_key_id,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

__all__ = ["GCM_NONCE_SIZE", "KeyStore"]

#: AES-GCM / SM4-GCM nonce length in bytes (NIST SP 800-38D 8.2, 96-bit IV).
GCM_NONCE_SIZE: Final = 12
_KCV_LENGTH: Final = 3  # bytes of E(0) shown as the key check value (ANSI X9.24-1)


class KeyStore(abc.ABC):
    """Named, versioned keys that never leave the store in clear.

    Args:
        random: Source of random bytes for PIN block fill (formats 3 and 4);
            ``secrets.token_bytes`` unless a test injects a fixed one.
    """

    #: Short backend name used in errors and logs.
    backend: ClassVar[str] = "abstract"

    def __init__(self, *, random: Callable[[int], bytes] = secrets.token_bytes) -> None:
        """Set up the lock and the random source shared by all backends."""
        self._lock = threading.RLock()
        self._random = random

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> Self:
        """Use the store as a context manager that closes it."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store."""
        self.close()

    def close(self) -> None:  # noqa: B027  # optional hook, most backends have nothing to close
        """Release the backend's resources; the store is unusable afterwards."""

    def __repr__(self) -> str:
        """Name the backend only."""
        return f"<{type(self).__name__} backend={self.backend}>"

    # ------------------------------------------------------------ key management

    @property
    @abc.abstractmethod
    def supported_algorithms(self) -> frozenset[Algorithm]:
        """The algorithms this backend can hold."""

    def generate_key(self, key_id: str, algorithm: Algorithm, usage: KeyUsage) -> KeyInfo:
        """Generate version 1 of a new key inside the store.

        Args:
            key_id: The new key's name.
            algorithm: Its algorithm.
            usage: What it may be used for.

        Returns:
            The new key version.

        Raises:
            KeyExistsError: The key exists; use :meth:`rotate_key`.
            KeyUsageError: The algorithm does not allow this usage.
            UnsupportedAlgorithmError: The backend cannot hold such keys.
        """
        algorithm, usage = Algorithm(algorithm), KeyUsage(usage)
        with self._lock:
            self._check_new(check_key_id(key_id), algorithm, usage)
            if self._versions(key_id):
                raise KeyExistsError(key_id)
            info = KeyInfo(key_id, 1, algorithm, usage)
            self._create(info, None)
            return info

    def import_key(
        self, key_id: str, algorithm: Algorithm, usage: KeyUsage, material: bytes
    ) -> KeyInfo:
        """Import a symmetric key as a new key, or as the next version of an existing one.

        Args:
            key_id: The key's name.
            algorithm: Its algorithm; must match the existing versions.
            usage: What it may be used for; must match the existing versions.
            material: The clear key bytes (for instance a zone PIN key
                delivered under dual control); 2-key 3DES is K1||K2.

        Returns:
            The new key version.

        Raises:
            InvalidKeyMaterialError: Wrong length or a degenerate 3DES key.
            KeyUsageError: The algorithm or usage differs from the existing versions,
                or the algorithm does not allow this usage.
            UnsupportedAlgorithmError: The backend cannot hold such keys, or they
                cannot be imported (key pairs are generated inside only).
        """
        algorithm, usage = Algorithm(algorithm), KeyUsage(usage)
        _check_material(algorithm, material)
        with self._lock:
            self._check_new(check_key_id(key_id), algorithm, usage)
            versions = self._versions(key_id)
            if versions and (versions[-1].algorithm, versions[-1].usage) != (algorithm, usage):
                raise KeyUsageError(key_id, "import", "algorithm or usage differs from the key's")
            info = KeyInfo(key_id, versions[-1].version + 1 if versions else 1, algorithm, usage)
            self._create(info, bytes(material))
            return info

    def rotate_key(self, key_id: str) -> KeyInfo:
        """Generate a new current version of a key, with the same algorithm and usage.

        Raises:
            KeyNotFoundError: No such key.
        """
        with self._lock:
            current = self.key_info(key_id)
            info = KeyInfo(key_id, current.version + 1, current.algorithm, current.usage)
            self._create(info, None)
            return info

    def retire_key(self, key_id: str, version: int) -> None:
        """Destroy an old version: what it protected can no longer be opened or verified.

        Raises:
            KeyNotFoundError: No such live version.
            KeyStateError: It is the current version; rotate first.
        """
        with self._lock:
            info = self.key_info(key_id, version)
            if info.version == self._versions(key_id)[-1].version:
                raise KeyStateError(key_id, version, "the current version cannot be retired")
            self._destroy(info)

    def list_keys(self) -> list[KeyInfo]:
        """Every live key version, sorted by key id then version."""
        with self._lock:
            return sorted(self._all(), key=lambda i: (i.key_id, i.version))

    def key_info(self, key_id: str, version: int | None = None) -> KeyInfo:
        """Describe the current version of a key, or the given live version.

        Raises:
            KeyNotFoundError: No such key or live version.
        """
        with self._lock:
            versions = self._versions(check_key_id(key_id))
            if not versions:
                raise KeyNotFoundError(key_id, version)
            if version is None:
                return versions[-1]
            for info in versions:
                if info.version == version:
                    return info
            raise KeyNotFoundError(key_id, version)

    def key_check_value(self, key_id: str, version: int | None = None) -> str:
        """The key check value of a PIN key: E(zero block), first 3 bytes, upper-case hex.

        Ops compare it with the value the key's custodians or the peer give.

        Raises:
            KeyUsageError: Not a PIN key.
        """
        with self._lock:
            info = self._usable(key_id, version, KeyUsage.PIN, "key_check_value")
            block = bytes(info.algorithm.block_size or 0)
            return self._block_encrypt(info, block)[:_KCV_LENGTH].hex().upper()

    def export_key(self, key_id: str, kek_id: str, *, version: int | None = None) -> WrappedKey:
        """A PIN key enciphered under a key-encryption key, with its check value.

        For loading a PIN pad: ``key_id`` is the pad's TPK, ``kek_id`` the pad's
        TMK held here as a :attr:`KeyUsage.KEY_WRAP` key of the same algorithm
        family. The key is enciphered ECB under the KEK (each block on its own,
        as PIN pads' LOAD KEY commands take it); the clear key never leaves the
        store. The check value lets the pad confirm what it deciphered.

        Raises:
            KeyNotFoundError: No such key or version.
            KeyUsageError: ``key_id`` is not a PIN key, ``kek_id`` not a key-wrap
                key, or their algorithms differ in block size.
            UnsupportedAlgorithmError: The backend cannot export keys.
        """
        with self._lock:
            info = self._usable(key_id, version, KeyUsage.PIN, "export_key")
            kek = self._usable(kek_id, None, KeyUsage.KEY_WRAP, "export_key")
            if kek.algorithm.block_size != info.algorithm.block_size:
                raise KeyUsageError(
                    kek_id, "export_key", f"a {kek.algorithm.value} key cannot wrap {key_id}"
                )
            wrapped = self._wrap(kek, info)
            check = self._block_encrypt(info, bytes(info.algorithm.block_size or 0))
            return WrappedKey(
                key_id=info.key_id,
                version=info.version,
                algorithm=info.algorithm,
                kek_id=kek.key_id,
                kek_version=kek.version,
                wrapped=wrapped,
                key_check_value=check[:_KCV_LENGTH].hex().upper(),
            )

    def public_key(self, key_id: str, version: int | None = None) -> bytes:
        """The DER SubjectPublicKeyInfo of a signing key.

        Raises:
            KeyUsageError: Not a signing key.
        """
        with self._lock:
            info = self._usable(key_id, version, KeyUsage.SIGN, "public_key")
            return self._public_key(info)

    # ------------------------------------------------------------ signatures

    def sign(self, key_id: str, data: bytes) -> Signature:
        """Sign ``data`` with the current version (ECDSA P-256 with SHA-256, DER).

        Raises:
            KeyUsageError: Not a signing key.
        """
        with self._lock:
            info = self._usable(key_id, None, KeyUsage.SIGN, "sign")
            return Signature(key_id, info.version, self._sign(info, bytes(data)))

    def verify(self, signature: Signature, data: bytes) -> None:
        """Check a signature with the key version it names.

        Raises:
            VerificationError: It does not verify.
            KeyNotFoundError: That version is retired or unknown.
        """
        with self._lock:
            info = self._usable(signature.key_id, signature.key_version, KeyUsage.SIGN, "verify")
            if not self._verify(info, bytes(data), bytes(signature.value)):
                raise VerificationError(info.key_id, info.version)

    # ------------------------------------------------------------ AEAD

    def encrypt(self, key_id: str, plaintext: bytes, *, associated_data: bytes = b"") -> Ciphertext:
        """Encrypt with the current version (AES-GCM or SM4-GCM, random 96-bit nonce).

        Raises:
            KeyUsageError: Not an encryption key.
        """
        with self._lock:
            info = self._usable(key_id, None, KeyUsage.ENCRYPT, "encrypt")
            nonce = os.urandom(GCM_NONCE_SIZE)
            data = self._aead_encrypt(info, nonce, bytes(plaintext), bytes(associated_data))
            return Ciphertext(key_id, info.version, nonce, data)

    def decrypt(self, ciphertext: Ciphertext, *, associated_data: bytes = b"") -> bytes:
        """Open a ciphertext with the key version it names.

        Raises:
            DecryptionError: Wrong associated data, or tampered.
            KeyNotFoundError: That version is retired or unknown.
        """
        with self._lock:
            info = self._usable(
                ciphertext.key_id, ciphertext.key_version, KeyUsage.ENCRYPT, "decrypt"
            )
            return self._aead_decrypt(
                info, bytes(ciphertext.nonce), bytes(ciphertext.data), bytes(associated_data)
            )

    # ------------------------------------------------------------ MAC

    def mac(self, key_id: str, data: bytes) -> Mac:
        """HMAC ``data`` with the current version.

        Raises:
            KeyUsageError: Not a MAC key.
        """
        with self._lock:
            info = self._usable(key_id, None, KeyUsage.MAC, "mac")
            return Mac(key_id, info.version, self._hmac(info, bytes(data)))

    def verify_mac(self, mac: Mac, data: bytes) -> None:
        """Check an HMAC (constant time) with the key version it names.

        Raises:
            VerificationError: It does not match.
        """
        with self._lock:
            info = self._usable(mac.key_id, mac.key_version, KeyUsage.MAC, "verify_mac")
            if not hmac.compare_digest(self._hmac(info, bytes(data)), bytes(mac.value)):
                raise VerificationError(info.key_id, info.version)

    # ------------------------------------------------------------ PIN blocks

    def encrypt_pin_block(
        self, key_id: str, pin: str, pan: str, pin_block_format: PinBlockFormat
    ) -> EncryptedPinBlock:
        """Build a PIN block and encrypt it under the current version of a PIN key.

        For PIN pad simulators and tests: in production the PIN pad does this
        and the daemon never sees a clear PIN.

        Raises:
            PinBlockError: Invalid PIN (not 4-12 digits) or PAN.
            KeyUsageError: Not a PIN key, or the format does not fit its algorithm.
        """
        with self._lock:
            info = self._pin_key(key_id, None, pin_block_format)
            return self._seal_pin(info, pin, pan, PinBlockFormat(pin_block_format))

    def translate_pin_block(
        self,
        block: EncryptedPinBlock,
        from_key: str,
        to_key: str,
        pan: str,
        out_format: PinBlockFormat,
    ) -> EncryptedPinBlock:
        """Re-encrypt a PIN block from one PIN key to another, changing format if asked.

        Args:
            block: The block, under ``from_key`` (the version it names).
            from_key: The key the caller expects the block to be under (checked).
            to_key: The PIN key to translate to (its current version).
            pan: The account number both blocks are bound to.
            out_format: The format of the result.

        Returns:
            The block under ``to_key``.

        Raises:
            KeyUsageError: ``from_key`` is not the block's key, a key is not a
                PIN key, or a format does not fit a key's algorithm.
            PinBlockError: The block does not decode (wrong key or wrong PAN).
        """
        if block.key_id != from_key:
            raise KeyUsageError(from_key, "translate_pin_block", "the block is under another key")
        with self._lock:
            source = self._pin_key(from_key, block.key_version, block.pin_block_format)
            target = self._pin_key(to_key, None, out_format)
            return self._translate_pin_block(block, source, target, pan, PinBlockFormat(out_format))

    def verify_pin_block(self, block: EncryptedPinBlock, pan: str, pin: str) -> bool:
        """Whether ``block`` holds ``pin`` (constant-time), for card and platform simulators.

        Raises:
            PinBlockError: The block does not decode (wrong key or wrong PAN).
        """
        with self._lock:
            info = self._pin_key(block.key_id, block.key_version, block.pin_block_format)
            inside = self._open_pin(info, block, pan)
            return hmac.compare_digest(inside.encode(), str(pin).encode())

    # ------------------------------------------------------------ card PIN commands

    def card_verify_command(self, block: EncryptedPinBlock, pan: str) -> CardPinCommand:
        """VERIFY for the social-security card, with the PIN inside ``block``.

        The PIN goes from the block into the command here and nowhere else; see
        :mod:`security.keystore.cardpin`.

        Raises:
            PinBlockError: The block does not decode (wrong key or wrong PAN).
            KeyUsageError: The block's key is not a PIN key.
        """
        with self._lock:
            info = self._pin_key(block.key_id, block.key_version, block.pin_block_format)
            return CardPinCommand("verify", sscard.verify(self._open_pin(info, block, pan)))

    def card_change_pin_command(
        self, old: EncryptedPinBlock, new: EncryptedPinBlock, pan: str
    ) -> CardPinCommand:
        """CHANGE PIN (``old || FF || new``) for the social-security card, from two blocks.

        Raises:
            PinBlockError: A block does not decode (wrong key or wrong PAN).
            KeyUsageError: A block's key is not a PIN key.
        """
        with self._lock:
            old_info = self._pin_key(old.key_id, old.key_version, old.pin_block_format)
            new_info = self._pin_key(new.key_id, new.key_version, new.pin_block_format)
            command = sscard.change_pin(
                self._open_pin(old_info, old, pan), self._open_pin(new_info, new, pan)
            )
            return CardPinCommand("change_pin", command)

    def _translate_pin_block(
        self,
        block: EncryptedPinBlock,
        source: KeyInfo,
        target: KeyInfo,
        pan: str,
        out_format: PinBlockFormat,
    ) -> EncryptedPinBlock:
        """Decrypt, re-encode and re-encrypt; an HSM backend overrides this with one call."""
        return self._seal_pin(target, self._open_pin(source, block, pan), pan, out_format)

    def _seal_pin(
        self, info: KeyInfo, pin: str, pan: str, fmt: PinBlockFormat
    ) -> EncryptedPinBlock:
        size = info.algorithm.block_size or 0
        if fmt is PinBlockFormat.ISO_4:
            pin_field = pinblock.build_format4_pin_field(pin, random=self._random)
            pan_field = pinblock.build_format4_pan_field(pan)
            middle = _xor(self._block_encrypt(info, pin_field), pan_field)
            ciphertext = self._block_encrypt(info, middle)
        elif fmt is PinBlockFormat.ISO_3:
            clear = pinblock.build_format3(pin, pan, block_size=size, random=self._random)
            ciphertext = self._block_encrypt(info, clear)
        else:
            clear = pinblock.build_format0(pin, pan, block_size=size)
            ciphertext = self._block_encrypt(info, clear)
        return EncryptedPinBlock(
            ciphertext, key_id=info.key_id, key_version=info.version, pin_block_format=fmt
        )

    def _open_pin(self, info: KeyInfo, block: EncryptedPinBlock, pan: str) -> str:
        ciphertext = block.ciphertext_bytes()
        if len(ciphertext) != info.algorithm.block_size:
            raise KeyUsageError(info.key_id, "pin_block", "block length does not fit the key")
        fmt = block.pin_block_format
        if fmt is PinBlockFormat.ISO_4:
            pan_field = pinblock.build_format4_pan_field(pan)
            middle = _xor(self._block_decrypt(info, ciphertext), pan_field)
            return pinblock.parse_format4_pin_field(self._block_decrypt(info, middle))
        clear = self._block_decrypt(info, ciphertext)
        if fmt is PinBlockFormat.ISO_3:
            return pinblock.parse_format3(clear, pan)
        return pinblock.parse_format0(clear, pan)

    # ------------------------------------------------------------ checks

    def _check_new(self, key_id: str, algorithm: Algorithm, usage: KeyUsage) -> None:
        if algorithm not in self.supported_algorithms:
            raise UnsupportedAlgorithmError(algorithm.value, self.backend)
        if usage not in algorithm.usages:
            raise KeyUsageError(key_id, usage.value, f"{algorithm.value} keys cannot do that")

    def _usable(self, key_id: str, version: int | None, usage: KeyUsage, operation: str) -> KeyInfo:
        info = self.key_info(key_id, version)
        if info.usage is not usage:
            raise KeyUsageError(key_id, operation, f"it is a {info.usage.value} key")
        return info

    def _pin_key(self, key_id: str, version: int | None, fmt: PinBlockFormat) -> KeyInfo:
        info = self._usable(key_id, version, KeyUsage.PIN, "pin_block")
        if PinBlockFormat(fmt) not in info.algorithm.pin_block_formats:
            raise KeyUsageError(
                key_id, "pin_block", f"format {int(fmt)} does not fit {info.algorithm.value}"
            )
        return info

    # ------------------------------------------------------------ backend primitives

    @abc.abstractmethod
    def _versions(self, key_id: str) -> list[KeyInfo]:
        """Live versions of ``key_id``, oldest first (empty if none)."""

    @abc.abstractmethod
    def _all(self) -> list[KeyInfo]:
        """Every live key version."""

    @abc.abstractmethod
    def _create(self, info: KeyInfo, material: bytes | None) -> None:
        """Store a new key version: generate it inside when ``material`` is None."""

    @abc.abstractmethod
    def _destroy(self, info: KeyInfo) -> None:
        """Destroy one key version."""

    def _wrap(self, kek: KeyInfo, info: KeyInfo) -> bytes:
        """``info``'s key enciphered ECB under ``kek`` (backends that can export override it)."""
        del kek
        raise UnsupportedAlgorithmError(f"export of {info.algorithm.value} keys", self.backend)

    @abc.abstractmethod
    def _block_encrypt(self, info: KeyInfo, data: bytes) -> bytes:
        """ECB-encrypt whole blocks with a PIN key."""

    @abc.abstractmethod
    def _block_decrypt(self, info: KeyInfo, data: bytes) -> bytes:
        """ECB-decrypt whole blocks with a PIN key."""

    @abc.abstractmethod
    def _aead_encrypt(self, info: KeyInfo, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """GCM-encrypt; returns ciphertext followed by the 16-byte tag."""

    @abc.abstractmethod
    def _aead_decrypt(self, info: KeyInfo, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        """GCM-decrypt; raises :class:`DecryptionError` when the tag does not match."""

    @abc.abstractmethod
    def _hmac(self, info: KeyInfo, data: bytes) -> bytes:
        """HMAC of ``data``."""

    @abc.abstractmethod
    def _sign(self, info: KeyInfo, data: bytes) -> bytes:
        """DER signature of ``data``."""

    @abc.abstractmethod
    def _verify(self, info: KeyInfo, data: bytes, signature: bytes) -> bool:
        """Whether the DER ``signature`` of ``data`` verifies."""

    @abc.abstractmethod
    def _public_key(self, info: KeyInfo) -> bytes:
        """DER SubjectPublicKeyInfo of a signing key."""


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _check_material(algorithm: Algorithm, material: bytes) -> None:
    if not algorithm.key_lengths:
        raise UnsupportedAlgorithmError(f"{algorithm.value} import", "any")
    if not isinstance(material, bytes | bytearray) or len(material) not in algorithm.key_lengths:
        raise InvalidKeyMaterialError(algorithm.value, "wrong length")
    if algorithm in (Algorithm.TDES_2KEY, Algorithm.TDES_3KEY):
        parts = [bytes(material[i : i + 8]) for i in range(0, len(material), 8)]
        # K1 == K2 (or K2 == K3) collapses 3DES to single DES.
        if parts[0] == parts[1] or parts[-1] == parts[-2]:
            raise InvalidKeyMaterialError(algorithm.value, "3DES key parts repeat (single DES)")

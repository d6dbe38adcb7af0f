"""The simulated key service (加密机): card cryptograms and MAC-ed card commands.

Card keys never leave it. Each card key is diversified from a master key by
the card identification code (一卡一密): ``K_card = SM4-ECB(master, AAZ501)``,
the 16 ASCII characters of AAZ501 being exactly one SM4 block. Three masters
serve three purposes: external authentication, secure-messaging MAC and PIN
encipherment. PIN blocks arrive under a zone PIN key shared with the branch
and are re-enciphered under the card's PIN key; the clear block exists only
inside :meth:`SoftwareKeyService.pin_reset_command`.

Computations (SM4, GB/T 32907; MACs per :func:`security.sm4.sm4_card_mac`):

* EXTERNAL AUTHENTICATE cryptogram: ``SM4-ECB(K_auth, pad(challenge))`` (16 bytes);
* a protected command: ``CLA INS P1 P2 Lc data MAC``, ``Lc`` counting the 4-byte
  MAC, the MAC over ``CLA INS P1 P2 Lc data`` with the challenge as IV;
* PIN reset: ``84 24 00 01 Lc SM4-ECB(K_pin, clear PIN block) MAC``;
* unlock: ``84 24 00 00 04 MAC`` (resets the retry counter, keeps the PIN).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Final, Protocol

from security.sm4 import (
    SM4_BLOCK_SIZE,
    SM4_KEY_SIZE,
    iso9797_m2_pad,
    sm4_card_mac,
    sm4_ecb_decrypt,
    sm4_ecb_encrypt,
)

__all__ = ["KeyService", "SoftwareKeyService"]

_CARD_ID_LENGTH: Final = 16
_MAC_SIZE: Final = 4
_HEADER_SIZE: Final = 4
_MAX_LC: Final = 255
PIN_RESET_HEADER: Final = bytes.fromhex("84240001")
UNLOCK_HEADER: Final = bytes.fromhex("84240000")


class KeyService(Protocol):
    """What the platform's key service computes from a card's challenge."""

    def external_authenticate(self, card_id: str, challenge: bytes) -> bytes:
        """The EXTERNAL AUTHENTICATE cryptogram for this card and challenge."""
        ...

    def protect_command(self, card_id: str, command: bytes, challenge: bytes) -> bytes:
        """``command`` (header and data, no Lc) as a full APDU with its MAC."""
        ...

    def pin_reset_command(self, card_id: str, pin_block: bytes, challenge: bytes) -> bytes:
        """The PIN reset APDU from a PIN block under the zone PIN key."""
        ...

    def unlock_command(self, card_id: str, challenge: bytes) -> bytes:
        """The unlock APDU."""
        ...


def _check_card_id(card_id: str) -> bytes:
    raw = card_id.encode("ascii", errors="replace")
    if len(raw) != _CARD_ID_LENGTH:
        raise ValueError("the card identification code has 16 characters")
    return raw


@dataclass(frozen=True, slots=True)
class SoftwareKeyService:
    """A key service with its master keys in memory (random unless given)."""

    auth_master: bytes = field(default_factory=lambda: os.urandom(SM4_KEY_SIZE), repr=False)
    mac_master: bytes = field(default_factory=lambda: os.urandom(SM4_KEY_SIZE), repr=False)
    pin_master: bytes = field(default_factory=lambda: os.urandom(SM4_KEY_SIZE), repr=False)
    #: The zone PIN key shared with the branches (PIN blocks arrive under it).
    zone_pin_key: bytes = field(default_factory=lambda: os.urandom(SM4_KEY_SIZE), repr=False)

    def card_key(self, purpose: str, card_id: str) -> bytes:
        """The diversified card key for ``purpose`` (``auth``, ``mac``, ``pin``).

        For the card simulator, which must hold the same keys as the issuer.
        """
        master = {"auth": self.auth_master, "mac": self.mac_master, "pin": self.pin_master}
        return sm4_ecb_encrypt(master[purpose], _check_card_id(card_id))

    def external_authenticate(self, card_id: str, challenge: bytes) -> bytes:
        """``SM4-ECB(K_auth, pad(challenge))``."""
        return sm4_ecb_encrypt(self.card_key("auth", card_id), iso9797_m2_pad(challenge))

    def protect_command(self, card_id: str, command: bytes, challenge: bytes) -> bytes:
        """Insert ``Lc`` (data + MAC) and append the MAC."""
        if len(command) < _HEADER_SIZE or len(command) - _HEADER_SIZE + _MAC_SIZE > _MAX_LC:
            raise ValueError("a command is a 4-byte header and at most 251 data bytes")
        header, data = command[:_HEADER_SIZE], command[_HEADER_SIZE:]
        body = header + bytes([len(data) + _MAC_SIZE]) + data
        return body + sm4_card_mac(self.card_key("mac", card_id), body, challenge)

    def pin_reset_command(self, card_id: str, pin_block: bytes, challenge: bytes) -> bytes:
        """Translate the PIN block to the card's PIN key; MAC the reset command."""
        if len(pin_block) != SM4_BLOCK_SIZE:
            raise ValueError("a PIN block under the zone key is one 16-byte SM4 block")
        clear = sm4_ecb_decrypt(self.zone_pin_key, pin_block)
        enciphered = sm4_ecb_encrypt(self.card_key("pin", card_id), clear)
        return self.protect_command(card_id, PIN_RESET_HEADER + enciphered, challenge)

    def unlock_command(self, card_id: str, challenge: bytes) -> bytes:
        """``84 24 00 00 04 MAC``."""
        return self.protect_command(card_id, UNLOCK_HEADER, challenge)

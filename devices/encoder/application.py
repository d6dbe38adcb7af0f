"""The social-security application over any card channel (PC/SC or in-process).

A thin async client: it builds commands with :mod:`protocols.sscard`, sends
them through a :class:`~devices.encoder.channel.CardChannel`, and turns status
words into :class:`protocols.sscard.CardStatusError` subclasses. Cryptograms,
MACs and enciphered PINs come from the key service (or :mod:`security.cardcrypto`)
and are passed in; no key is handled here. PINs are never logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocols import sscard
from protocols.sscard import (
    EF05_FIELDS,
    EF06_FIELDS,
    FID_EF05,
    FID_EF06,
    SFI_EF05,
    SFI_EF06,
    CardGeneration,
    HolderData,
    IssuerData,
    NotFoundError,
)
from protocols.sscard.status import SW_PIN_BLOCKED

if TYPE_CHECKING:
    from devices.encoder.channel import CardChannel
    from protocols.apdu import CommandApdu

__all__ = ["SocialSecurityApplication"]

_FIDS = {SFI_EF05: FID_EF05, SFI_EF06: FID_EF06}


class SocialSecurityApplication:
    """Commands of the social-security application on one card channel.

    Every method raises :class:`protocols.sscard.CardStatusError` (a subclass
    telling why) when the card refuses, and :class:`devices.encoder.EncoderError`
    when the reader or the card is gone.
    """

    def __init__(self, channel: CardChannel) -> None:
        """Use ``channel`` (the caller owns and closes it)."""
        self.channel = channel

    async def _run(self, command: CommandApdu, name: str) -> bytes:
        return sscard.check(await self.channel.transmit(command), name)

    async def select(self) -> None:
        """SELECT the application by name."""
        await self._run(sscard.select_application(), "select")

    async def read_record(self, sfi: int, record: int) -> bytes:
        """READ RECORD: the record's bytes (one TLV)."""
        return await self._run(sscard.read_record(sfi, record), "read_record")

    async def read_issuer(self) -> IssuerData:
        """Read and decode EF05."""
        records = {spec.tag: await self.read_record(SFI_EF05, spec.tag) for spec in EF05_FIELDS}
        return IssuerData.from_records(records)

    async def read_generation(self) -> CardGeneration:
        """The card generation from the spec version record (EF05 tag 03)."""
        spec = sscard.FIELDS[0x03]
        items = sscard.decode_tlvs(await self.read_record(SFI_EF05, spec.tag))
        if len(items) != 1:
            raise sscard.SscardDecodeError("record does not hold its one TLV", spec.tag)
        version = sscard.decode_field(spec, items[0][1])
        return sscard.generation_from_version(str(version))

    async def read_holder(self) -> HolderData:
        """Read and decode EF06 (the name extension only where the card has it)."""
        records: dict[int, bytes] = {}
        for spec in EF06_FIELDS:
            try:
                records[spec.tag] = await self.read_record(SFI_EF06, spec.tag)
            except NotFoundError:
                if spec.name != "name_extension":
                    raise
        return HolderData.from_records(records)

    async def update_record(self, sfi: int, record: int, tlv: bytes) -> None:
        """SELECT the EF, then UPDATE RECORD (needs EXTERNAL AUTHENTICATE first)."""
        await self._run(sscard.select_file(_FIDS[sfi]), "select_file")
        await self._run(sscard.update_record(record, tlv), "update_record")

    async def get_challenge(self) -> bytes:
        """GET CHALLENGE: 8 random bytes from the card."""
        return await self._run(sscard.get_challenge(), "get_challenge")

    async def external_authenticate(self, cryptogram: bytes) -> None:
        """EXTERNAL AUTHENTICATE with the key service's cryptogram."""
        await self._run(sscard.external_authenticate(cryptogram), "external_authenticate")

    async def verify(self, pin: str) -> None:
        """VERIFY the PIN (``WrongPinError.tries_left`` tells the tries left)."""
        await self._run(sscard.verify(pin), "verify")

    async def pin_tries_left(self) -> int:
        """The PIN tries left (VERIFY without data, which uses none); 0 when locked.

        Raises:
            CardStatusError: Any answer other than ``63Cx`` or ``6983``.
        """
        sw = (await self.channel.transmit(sscard.verify_status())).sw
        if sw == SW_PIN_BLOCKED:
            return 0
        if sw & 0xFFF0 == sscard.wrong_pin_sw(0):
            return sw & 0x0F
        raise sscard.error_for(sw, "verify_status")

    async def change_pin(self, old: str, new: str) -> None:
        """CHANGE PIN (the holder's own operation)."""
        await self._run(sscard.change_pin(old, new), "change_pin")

    async def pin_reset(self, enciphered_pin: bytes, mac: bytes) -> None:
        """PIN reset ``84 24 00 01`` with the key service's enciphered PIN and MAC."""
        await self._run(sscard.pin_reset(enciphered_pin, mac), "pin_reset")

    async def pin_unlock(self, mac: bytes) -> None:
        """PIN unlock ``84 24 00 00`` (refills the retry counter, keeps the PIN)."""
        await self._run(sscard.pin_unlock(mac), "pin_unlock")

    async def application_block(self, mac: bytes) -> None:
        """APPLICATION BLOCK."""
        await self._run(sscard.application_block(mac), "application_block")

    async def application_unblock(self, mac: bytes) -> None:
        """APPLICATION UNBLOCK."""
        await self._run(sscard.application_unblock(mac), "application_unblock")

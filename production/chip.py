"""Chip steps of a job: read the blank, authenticate and write, read back and compare.

A blank card arrives with its card identification code (AAZ501) and spec
version in EF05 (the card keys are diversified from that code); personalization
writes the remaining EF05 records (issue and expiry dates, card number) and
every EF06 record, after EXTERNAL AUTHENTICATE with the cryptogram the key
service computes from the card's challenge. Nothing personal is logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import structlog

from devices.encoder.application import SocialSecurityApplication
from production.errors import VerifyMismatchError
from production.model import ChipFacts
from production.ports import KeyRequest
from protocols import sscard
from protocols.sscard import SFI_EF05, SFI_EF06, HolderData, IssuerData

if TYPE_CHECKING:
    import datetime as dt

    from production.model import Order
    from production.ports import EncoderPort, KeyService

__all__ = ["CHIP_SERIAL_BYTES", "ChipSession", "Personalization", "read_blank", "verify"]

log = structlog.get_logger(__name__)

#: The chip serial is the card identification code's last 8 bytes (the data
#: its keys are diversified from, unique per chip).
CHIP_SERIAL_BYTES: Final = 8
_FACTORY_TAGS: Final = frozenset({0x01, 0x03})  # written by the card maker
_EXPIRY_YEARS: Final = 10


@dataclass(frozen=True, slots=True)
class Personalization:
    """The two files as they must end up on the chip."""

    issuer: IssuerData
    holder: HolderData

    @classmethod
    def of(
        cls, order: Order, chip: ChipFacts, card_number: str, issue_date: dt.date
    ) -> Personalization:
        """The records for ``order`` on the chip described by ``chip``."""
        expiry = issue_date.replace(year=issue_date.year + _EXPIRY_YEARS)
        generation = sscard.generation_from_version(chip.spec_version)
        return cls(
            issuer=IssuerData(
                card_id_code=chip.card_id_code,
                spec_version=chip.spec_version,
                issue_date=issue_date,
                expiry_date=expiry,
                card_number=card_number,
            ),
            holder=HolderData(
                ssn=order.ssn,
                name=order.name,
                sex=order.sex,
                ethnicity=order.ethnicity,
                birth_date=order.birth_date,
                name_extension=order.name_extension
                if generation is sscard.CardGeneration.THIRD
                else None,
            ),
        )


async def _open(encoder: EncoderPort, reader: str) -> SocialSecurityApplication:
    channel = await encoder.connect(reader)
    app = SocialSecurityApplication(channel)
    try:
        await app.select()
    except BaseException:
        await channel.close()
        raise
    return app


def _field(record: bytes, tag: int) -> str:
    items = sscard.decode_tlvs(record)
    if len(items) != 1 or items[0][0] != tag:
        raise sscard.SscardDecodeError("record does not hold its one TLV", tag)
    value = sscard.decode_field(sscard.FIELDS[tag], items[0][1])
    return str(value)


async def read_blank(encoder: EncoderPort, reader: str) -> ChipFacts:
    """Read the ATR, the card identification code and the spec version.

    Raises:
        EncoderError: The reader or the card is gone.
        SscardError: The card refused or answered garbage.
    """
    app = await _open(encoder, reader)
    try:
        card_id_code = _field(await app.read_record(SFI_EF05, 0x01), 0x01)
        version = _field(await app.read_record(SFI_EF05, 0x03), 0x03)
        sscard.generation_from_version(version)
        return ChipFacts(
            atr=app.channel.atr.hex().upper(),
            card_id_code=card_id_code,
            chip_serial=card_id_code[-2 * CHIP_SERIAL_BYTES :],
            spec_version=version,
        )
    finally:
        await app.channel.close()


class ChipSession:
    """One session with the card in a reader: authenticate, then write.

    EXTERNAL AUTHENTICATE holds for the session only, so both happen on one
    channel; :meth:`close` ends it.
    """

    def __init__(self, app: SocialSecurityApplication) -> None:
        """Use an application already selected (see :meth:`open`)."""
        self._app = app

    @classmethod
    async def open(cls, encoder: EncoderPort, reader: str) -> ChipSession:
        """Connect to the card in ``reader`` and select the application.

        Raises:
            EncoderError: The reader or the card is gone.
            SscardError: The card refused the selection.
        """
        return cls(await _open(encoder, reader))

    async def authenticate(
        self, key_service: KeyService, target: Personalization, chip: ChipFacts, region: str
    ) -> None:
        """GET CHALLENGE, the key service's cryptogram, EXTERNAL AUTHENTICATE.

        Raises:
            SscardError: The card refused.
            Exception: Whatever the key service raises.
        """
        generation = sscard.generation_from_version(chip.spec_version)
        request = KeyRequest(
            card_id_code=chip.card_id_code,
            algorithm=sscard.algorithm_for(generation),
            atr=chip.atr,
            card_number=target.issuer.card_number,
            ssn=target.holder.ssn,
            region=region,
        )
        challenge = await self._app.get_challenge()
        cryptogram = await key_service.external_authenticate(request, challenge)
        await self._app.external_authenticate(cryptogram)

    async def write(self, target: Personalization) -> None:
        """UPDATE RECORD every record but those the card maker wrote.

        Raises:
            SscardError: The card refused a write.
        """
        for tag, tlv in target.issuer.to_records().items():
            if tag not in _FACTORY_TAGS:
                await self._app.update_record(SFI_EF05, tag, tlv)
        for tag, tlv in target.holder.to_records().items():
            await self._app.update_record(SFI_EF06, tag, tlv)

    async def close(self) -> None:
        """Release the channel (errors on the way out are ignored)."""
        with contextlib.suppress(Exception):
            await self._app.channel.close()


async def verify(encoder: EncoderPort, reader: str, target: Personalization) -> None:
    """Read both files back and compare them with ``target``.

    Raises:
        VerifyMismatchError: A field differs (or a record does not decode).
        EncoderError: The reader or the card is gone.
    """
    app = await _open(encoder, reader)
    try:
        try:
            issuer = await app.read_issuer()
            holder = await app.read_holder()
        except sscard.SscardDecodeError as exc:
            raise VerifyMismatchError(["records"]) from exc
    finally:
        await app.channel.close()
    differing = [
        spec.name
        for spec in dataclasses.fields(IssuerData)
        if getattr(issuer, spec.name) != getattr(target.issuer, spec.name)
    ] + [
        spec.name
        for spec in dataclasses.fields(HolderData)
        if getattr(holder, spec.name) != getattr(target.holder, spec.name)
    ]
    if differing:
        raise VerifyMismatchError(differing)

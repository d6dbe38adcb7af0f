"""Fixtures for the station tests: the printer tests' pty check, the card tests' pcscd.

Helpers drive a card the way the production pipeline does: a printer driver
over the station's pty, and an encoder channel for the chip at the contact
station (personalized with the demo master keys).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import pytest

from devices.encoder import SocialSecurityApplication
from devices.printer import PrinterDriver
from protocols.printer.frames import Depth, Panel, panel_size
from protocols.sscard import FIELDS, SFI_EF05, SFI_EF06, HolderData, encode_field
from security.cardcrypto import derive_card_keys, external_auth_cryptogram
from simulators.card.cli import DEMO_MASTER_KEYS
from tests.devices.card.conftest import pcscd
from tests.devices.printer.conftest import TEST_TIMEOUTS, pty_available
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable

    from devices.encoder.channel import CardChannel

__all__ = ["PANELS", "make_driver", "pcscd", "personalize", "pty_available"]

#: One black panel: enough for the printer to print.
PANELS = [(Panel.BLACK, Depth.LEVELS_2, b"\x00" * panel_size(Depth.LEVELS_2))]
_TAG_CARD_NUMBER = 0x07


def make_driver(url: str | Callable[[], str]) -> PrinterDriver:
    """A printer driver with short timeouts and a fake clock (the station is instant)."""
    return PrinterDriver(url, clock=FakeClock(), rng=random.Random(7), timeouts=TEST_TIMEOUTS)


async def personalize(channel: CardChannel, card_number: str, holder: HolderData) -> str:
    """Write the card number and the holder as the branch does; return the card id code.

    Raises:
        CardStatusError: The chip refused a command.
    """
    app = SocialSecurityApplication(channel)
    await app.select()
    card_id_code = (await app.read_record(SFI_EF05, 0x01))[2:].hex().upper()
    keys = derive_card_keys(DEMO_MASTER_KEYS, card_id_code, "sm4")
    challenge = await app.get_challenge()
    await app.external_authenticate(external_auth_cryptogram(keys.external_auth, challenge, "sm4"))
    number = encode_field(FIELDS[_TAG_CARD_NUMBER], card_number)
    await app.update_record(SFI_EF05, _TAG_CARD_NUMBER, number)
    for record, tlv in holder.to_records().items():
        await app.update_record(SFI_EF06, record, tlv)
    return card_id_code


@pytest.fixture
def holder() -> HolderData:
    """A made-up holder."""
    import datetime as dt  # noqa: PLC0415 - only here

    return HolderData(
        ssn="33010619900101123X",
        name="李四",
        sex="1",
        ethnicity="01",
        birth_date=dt.date(1990, 1, 1),
        name_extension="李四",
    )

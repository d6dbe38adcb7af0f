"""A simulated card, the platform's key service and the branch's client, end to end.

The card is the card simulator in an in-process reader; the key service is the
platform simulator's, reached over real mutual TLS and envelopes through the
branch's platform client (both dialects). The card accepts what the key
service computes, so both sides speak security.cardcrypto.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from devices.encoder import InProcessEncoder, SocialSecurityApplication
from gateway.upstream import (
    Applicant,
    CardRef,
    DialectPlatformClient,
    KeyServiceContext,
    ProductionData,
    pin_block_account,
)
from protocols import sscard
from protocols.apdu import CommandApdu
from protocols.platform import PlatformOperation
from protocols.sscard import (
    SFI_EF05,
    AuthenticationFailedError,
    HolderData,
    IssuerData,
    PinBlockedError,
    SecurityStatusError,
    WrongPinError,
    encode_tlv,
)
from security.cardcrypto import CardMasterKeys
from security.envelope import DictEnvelopeKeys
from security.keystore import Algorithm, KeyUsage, PinBlockFormat, SoftwareKeyStore
from simulators.card import SimulatedCard
from simulators.card.cli import DEMO_MASTER_KEYS
from simulators.platform import DEMO_ZONE_PIN_KEY, PlatformSimulator, SoftwareKeyService

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from security.envelope import SenderIdentity
    from security.keystore import EncryptedPinBlock
    from tests.fakes import FakeClock
    from tests.gateway.upstream.conftest import Pki

pytestmark = pytest.mark.integration

READER = "Virtual PCD 00 00"
XINJIANG_SSN = "650102199001011234"
XINJIANG_CARD_ID = "652300D15600000500000000000000A1"
CHONGQING_SSN = "50010319850505002X"
CHONGQING_CARD_ID = "500000D15600000500000000000000C7"
#: Chongqing's own master keys: its cards do not open with anyone else's.
CHONGQING_MASTERS = CardMasterKeys(
    external_auth=bytes.fromhex("A1A1A1A1A1A1A1A1B2B2B2B2B2B2B2B2"),
    pin_reset=bytes.fromhex("C3C3C3C3C3C3C3C3D4D4D4D4D4D4D4D4"),
    pin_unlock=bytes.fromhex("E5E5E5E5E5E5E5E5F6F6F6F6F6F6F6F6"),
    app_maintenance=bytes.fromhex("0707070707070707A8A8A8A8A8A8A8A8"),
)
HOLDER_PIN = "246810"
NEW_PIN = "864200"


@pytest.fixture
async def platform_sim(
    pki: Pki, identity: SenderIdentity, manual_clock: FakeClock
) -> AsyncIterator[PlatformSimulator]:
    """The platform simulator whose key service holds Chongqing's own master keys."""
    trusted = DictEnvelopeKeys()
    trusted.add(identity)
    simulator = PlatformSimulator(
        ssl_context=pki.server(),
        trusted=trusted,
        now=manual_clock.now,
        key_service=SoftwareKeyService(masters={"500000": CHONGQING_MASTERS}),
    )
    async with simulator:
        yield simulator


def _card(card_id_code: str, ssn: str, masters: CardMasterKeys) -> SimulatedCard:
    """A third-generation T=0 card with 3 PIN tries."""
    return SimulatedCard.issue(
        issuer=IssuerData(
            card_id_code=card_id_code,
            spec_version="3.00",
            issue_date=dt.date(2026, 1, 5),
            expiry_date=dt.date(2036, 1, 5),
            card_number="X00000001",
        ),
        holder=HolderData(
            ssn=ssn,
            name="张三",
            sex="1",
            ethnicity="01",
            birth_date=dt.date(1990, 1, 1),
            name_extension="张三",
        ),
        masters=masters,
        retries=3,
        protocol="T=0",
    )


async def _application(card: SimulatedCard) -> SocialSecurityApplication:
    """The card in an in-process reader, its application selected."""
    encoder = InProcessEncoder(readers=(READER,))
    encoder.insert(READER, card)
    application = SocialSecurityApplication(await encoder.connect(READER))
    await application.select()
    return application


async def _apply_script(application: SocialSecurityApplication, apdu: bytes, name: str) -> None:
    """Send a MAC-ed command from the key service to the card as it is."""
    sscard.check(await application.channel.transmit(CommandApdu.from_bytes(apdu)), name)


def _pin_block(keystore: SoftwareKeyStore, pin: str, ssn: str) -> EncryptedPinBlock:
    """The new PIN as the branch holds it: a format 0 block under the zone PIN key."""
    if "zone-pin" not in {info.key_id for info in keystore.list_keys()}:
        keystore.import_key("zone-pin", Algorithm.SM4_128, KeyUsage.PIN, DEMO_ZONE_PIN_KEY)
    return keystore.encrypt_pin_block("zone-pin", pin, pin_block_account(ssn), PinBlockFormat.ISO_0)


async def _issue_in_xinjiang(
    client: DialectPlatformClient, card: SimulatedCard, card_id_code: str
) -> KeyServiceContext:
    """Apply, return the chip's data and enable, as instant issuance does."""
    applied = await client.apply(Applicant(XINJIANG_SSN, "张三", "652300"))
    atr = card.atr.hex().upper()
    await client.return_data(
        ProductionData(applied.card_number, atr, card_id_code, "0A0B0C0D", "3.00")
    )
    await client.enable(CardRef(applied.card_number, card_id_code))
    return KeyServiceContext(
        "T-652300-01-K1", "652300", XINJIANG_SSN, applied.card_number, card_id_code, atr
    )


async def test_external_authenticate_then_update_record(
    platform_client: DialectPlatformClient,
) -> None:
    """GET CHALLENGE, the key service's cryptogram, EXTERNAL AUTHENTICATE, UPDATE RECORD."""
    card = _card(XINJIANG_CARD_ID, XINJIANG_SSN, DEMO_MASTER_KEYS)
    application = await _application(card)
    issuer = await application.read_issuer()
    context = await _issue_in_xinjiang(platform_client, card, issuer.card_id_code)
    tlv = encode_tlv(0x07, b"X12345678")
    with pytest.raises(SecurityStatusError):
        await application.update_record(SFI_EF05, 7, tlv)
    stale = await application.get_challenge()
    await application.get_challenge()  # the card now expects this one
    with pytest.raises(AuthenticationFailedError):
        await application.external_authenticate(
            await platform_client.external_authenticate(context, stale)
        )
    fresh = await application.get_challenge()
    cryptogram = await platform_client.external_authenticate(context, fresh)
    await application.external_authenticate(cryptogram)
    await application.update_record(SFI_EF05, 7, tlv)
    assert (await application.read_issuer()).card_number == "X12345678"


async def test_pin_reset_and_unlock(
    platform_client: DialectPlatformClient, keystore: SoftwareKeyStore
) -> None:
    """The MAC-ed reset sets the new PIN; unlock refills the tries and keeps the PIN."""
    card = _card(XINJIANG_CARD_ID, XINJIANG_SSN, DEMO_MASTER_KEYS)
    application = await _application(card)
    context = await _issue_in_xinjiang(platform_client, card, XINJIANG_CARD_ID)
    await application.change_pin(sscard.DEFAULT_PIN, HOLDER_PIN)
    block = _pin_block(keystore, NEW_PIN, XINJIANG_SSN)
    reset = await platform_client.authorize_pin_reset(
        context, block, await application.get_challenge()
    )
    assert reset[:4] == bytes.fromhex("84240100")
    await _apply_script(application, reset, "pin_reset")
    await application.verify(NEW_PIN)
    with pytest.raises(WrongPinError) as wrong:
        await application.verify(HOLDER_PIN)
    assert wrong.value.tries_left == 2
    for _ in range(2):
        with pytest.raises((WrongPinError, PinBlockedError)):
            await application.verify("000000")
    with pytest.raises(PinBlockedError):
        await application.verify(NEW_PIN)
    assert card.state.retries_left == 0
    unlock = await platform_client.authorize_unlock(context, await application.get_challenge())
    await _apply_script(application, unlock, "pin_unlock")
    assert card.state.retries_left == card.state.retries_max == 3
    await application.verify(NEW_PIN)
    assert card.state.pin == NEW_PIN


async def test_card_of_another_province_goes_through_the_hub(
    platform_client: DialectPlatformClient,
    platform_sim: PlatformSimulator,
    keystore: SoftwareKeyStore,
) -> None:
    """A Chongqing card at a 652300 branch: the hub routes to Chongqing, whose keys answer."""
    chongqing = platform_sim.provinces["500000"]
    registered = chongqing.add_card(
        CHONGQING_SSN, "李四", "500100", aaz501=CHONGQING_CARD_ID, version="3.00"
    )
    registered.aaz502 = "1"
    card = _card(CHONGQING_CARD_ID, CHONGQING_SSN, CHONGQING_MASTERS)
    application = await _application(card)
    context = KeyServiceContext(
        "T-652300-01-K1",
        "652300",
        CHONGQING_SSN,
        registered.aaz500,
        CHONGQING_CARD_ID,
        card.atr.hex().upper(),
    )
    with capture_logs() as logs:
        cryptogram = await platform_client.external_authenticate(
            context, await application.get_challenge()
        )
    await application.external_authenticate(cryptogram)
    answered = [e for e in logs if e["event"] == "key_service_answered"]
    assert [e["issuer"] for e in answered] == ["500000"]
    await application.change_pin(sscard.DEFAULT_PIN, HOLDER_PIN)
    block = _pin_block(keystore, NEW_PIN, CHONGQING_SSN)
    reset = await platform_client.authorize_pin_reset(
        context, block, await application.get_challenge()
    )
    await _apply_script(application, reset, "pin_reset")
    await application.verify(NEW_PIN)
    raw = await platform_client.call(
        PlatformOperation.EXTERNAL_AUTH,
        {**context.fields(), "challenge": (await application.get_challenge()).hex()},
    )
    assert raw.fields["issuer"] == "500000"
    assert platform_sim.hub.routed == 3
    assert platform_sim.provinces["650000"].cards == {}

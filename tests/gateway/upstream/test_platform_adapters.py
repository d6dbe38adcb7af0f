"""Every platform adapter operation over real mutual TLS and envelopes, in both dialects."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from gateway.upstream import (
    Applicant,
    AppState,
    CardRef,
    DialectPlatformClient,
    KeyServiceContext,
    LossType,
    ProductionData,
    UpstreamRejectedError,
)
from gateway.upstream.platform import is_already_applied, pin_block_account
from protocols.platform import Result, Status
from security.cardcrypto import (
    derive_card_keys,
    encipher_pin,
    external_auth_cryptogram,
    mac_command,
)
from security.keystore import (
    Algorithm,
    EncryptedPinBlock,
    KeyUsage,
    PinBlockFormat,
    SoftwareKeyStore,
)
from simulators.card.cli import DEMO_MASTER_KEYS
from simulators.platform import DEMO_ZONE_PIN_KEY, PlatformSimulator, SoftwareKeyService
from simulators.platform import pin_block_account as sim_pin_block_account

pytestmark = pytest.mark.integration

PERSON = Applicant("650102199001011234", "张三", "652300")
CARD_ID = "652300D15600000500000000000000A1"


async def _issued(client: DialectPlatformClient) -> CardRef:
    """Apply, return data and enable: an active card."""
    applied = await client.apply(PERSON)
    card = CardRef(applied.card_number, CARD_ID)
    await client.return_data(
        ProductionData(applied.card_number, "3B6C0000", CARD_ID, "0102030405", "3.00")
    )
    await client.enable(card)
    return card


def _context(card: CardRef) -> KeyServiceContext:
    assert card.card_id_code is not None
    return KeyServiceContext(
        terminal_id="T-652300-01-K1",
        region="652300",
        social_security_number=PERSON.social_security_number,
        card_number=card.card_number,
        card_id_code=card.card_id_code,
        atr="3B6C0000",
    )


async def test_apply_is_idempotent(
    platform_client: DialectPlatformClient, platform_sim: PlatformSimulator
) -> None:
    """A second application answers "already has a valid application" with the same card."""
    first = await platform_client.apply(PERSON)
    assert first.card_number.startswith("X")
    assert first.photo.startswith(b"\xff\xd8")
    assert not first.already_applied
    again = await platform_client.apply(PERSON)
    assert again.already_applied
    assert again.card_number == first.card_number
    assert len(platform_sim.provinces["650000"].cards) == 1


async def test_card_lifecycle(
    platform_client: DialectPlatformClient, platform_sim: PlatformSimulator
) -> None:
    """Apply, card data, return data, enable, status, loss, cancel loss, change, e-card, cancel."""
    photo = b"\xff\xd8\xff\xe0branch-photo\xff\xd9"
    applied = await platform_client.apply(
        Applicant(PERSON.social_security_number, PERSON.name, PERSON.region, photo)
    )
    assert applied.photo == photo
    card = CardRef(applied.card_number)
    data = await platform_client.get_card_data(card)
    assert (data.name, data.region, data.state) == ("张三", "652300", AppState.SEALED)
    assert data.card_id_code is None
    await platform_client.return_data(
        ProductionData(applied.card_number, "3B6C0000", CARD_ID, "0102030405", "3.00")
    )
    card = CardRef(applied.card_number, CARD_ID)
    assert (await platform_client.get_card_data(card)).card_id_code == CARD_ID
    assert await platform_client.query_status(card) is AppState.SEALED
    await platform_client.enable(card)
    assert await platform_client.query_status(card) is AppState.NORMAL
    await platform_client.report_loss(card, LossType.TEMPORARY)
    assert await platform_client.query_status(card) is AppState.TEMPORARY_LOSS
    await platform_client.cancel_loss(card)
    assert await platform_client.query_status(card) is AppState.NORMAL
    await platform_client.change_info(card, address="昌吉市 1 号", phone="13800000000")
    stored = platform_sim.provinces["650000"].cards[applied.card_number]
    assert (stored.address, stored.phone) == ("昌吉市 1 号", "13800000000")
    assert (stored.aaz507, stored.chip_serial, stored.version) == ("3B6C0000", "0102030405", "3.00")
    assert await platform_client.electronic_card(card)
    await platform_client.cancel_card(card, "本人申请")
    assert await platform_client.query_status(card) is AppState.CANCELLED


async def test_refusals_are_typed(platform_client: DialectPlatformClient) -> None:
    """State, not-found and key-information refusals raise UpstreamRejectedError."""
    applied = await platform_client.apply(PERSON)
    card = CardRef(applied.card_number)
    with pytest.raises(UpstreamRejectedError) as info:
        await platform_client.enable(card)  # no return data yet
    assert info.value.status == Status.INVALID_STATE
    with pytest.raises(UpstreamRejectedError) as info:
        await platform_client.query_status(CardRef("X99999999"))
    assert info.value.status == Status.NOT_FOUND
    with pytest.raises(UpstreamRejectedError) as info:
        await platform_client.change_info(card)
    assert info.value.status == Status.INVALID_REQUEST
    assert "非关键" in info.value.remote_message


async def test_the_platform_refuses_what_a_platform_refuses(
    platform_client: DialectPlatformClient, platform_sim: PlatformSimulator
) -> None:
    """Second enable, enable or e-card in loss, change when cancelled, rollback once closed."""
    card = await _issued(platform_client)
    stored = platform_sim.provinces["650000"].cards[card.card_number]
    with pytest.raises(UpstreamRejectedError) as info:
        await platform_client.enable(card)  # a second enable
    assert info.value.status == Status.INVALID_STATE
    await platform_client.report_loss(card, LossType.TEMPORARY)
    for refused in (platform_client.enable(card), platform_client.electronic_card(card)):
        with pytest.raises(UpstreamRejectedError) as info:
            await refused
        assert info.value.status == Status.INVALID_STATE
    await platform_client.cancel_card(card, "本人申请")
    with pytest.raises(UpstreamRejectedError) as info:
        await platform_client.change_info(card, phone="13800000000")
    assert info.value.status == Status.INVALID_STATE
    await platform_client.rollback_cancel(card)  # back to the loss it found, not to normal
    assert await platform_client.query_status(card) is AppState.TEMPORARY_LOSS
    await platform_client.cancel_loss(card)
    assert await platform_client.query_status(card) is AppState.NORMAL
    await platform_client.cancel_card(card, "本人申请")
    platform_sim.provinces["650000"].close_cancellation(card.card_number)
    with pytest.raises(UpstreamRejectedError) as info:
        await platform_client.rollback_cancel(card)
    assert info.value.status == Status.INVALID_STATE
    assert stored.aaz502 == "9"


async def test_cancel_loss_of_a_card_never_enabled_leaves_it_sealed(
    platform_client: DialectPlatformClient,
) -> None:
    """The platform remembers what a loss interrupted, as the branch does."""
    applied = await platform_client.apply(PERSON)
    card = CardRef(applied.card_number)
    await platform_client.report_loss(card, LossType.TEMPORARY)
    await platform_client.cancel_loss(card)
    assert await platform_client.query_status(card) is AppState.SEALED


async def test_key_service(
    platform_client: DialectPlatformClient,
    platform_sim: PlatformSimulator,
    keystore: SoftwareKeyStore,
) -> None:
    """Cryptograms and MAC-ed commands follow security.cardcrypto under the demo master keys."""
    assert isinstance(platform_sim.key_service, SoftwareKeyService)
    keys = derive_card_keys(DEMO_MASTER_KEYS, CARD_ID, "sm4")
    card = await _issued(platform_client)
    context = _context(card)
    challenge = bytes.fromhex("0102030405060708")
    cryptogram = await platform_client.external_authenticate(context, challenge)
    assert cryptogram == external_auth_cryptogram(keys.external_auth, challenge, "sm4")
    block_command = bytes.fromhex("841E0000")  # APPLICATION BLOCK: no data
    protected = await platform_client.protect_command(context, block_command, challenge)
    mac = mac_command(keys.app_maintenance, challenge, (0x84, 0x1E, 0, 0), b"", "sm4")
    assert protected == bytes.fromhex("841E000004") + mac
    store = keystore
    store.import_key("zone-pin", Algorithm.SM4_128, KeyUsage.PIN, DEMO_ZONE_PIN_KEY)
    account = pin_block_account(PERSON.social_security_number)
    block = store.encrypt_pin_block("zone-pin", "864200", account, PinBlockFormat.ISO_0)
    reset = await platform_client.authorize_pin_reset(context, block, challenge)
    enciphered = encipher_pin(keys.pin_reset, "864200", "sm4")
    assert reset[:5] == bytes.fromhex("8424010014")
    assert reset[5:21] == enciphered
    assert reset[21:] == mac_command(
        keys.pin_reset, challenge, (0x84, 0x24, 1, 0), enciphered, "sm4"
    )
    unlock = await platform_client.authorize_unlock(context, challenge)
    assert unlock == bytes.fromhex("8424000004") + mac_command(
        keys.pin_unlock, challenge, (0x84, 0x24, 0, 0), b"", "sm4"
    )


async def test_key_service_refusals(platform_client: DialectPlatformClient) -> None:
    """Unprotectable commands, bad PIN blocks and unknown algorithms are invalid requests."""
    context = _context(await _issued(platform_client))
    with pytest.raises(UpstreamRejectedError) as info:
        await platform_client.protect_command(context, bytes.fromhex("00DC0104"), bytes(8))
    assert info.value.status == Status.INVALID_REQUEST
    garbage = EncryptedPinBlock(
        bytes(16), key_id="zone-pin", key_version=1, pin_block_format=PinBlockFormat.ISO_0
    )
    with pytest.raises(UpstreamRejectedError) as info:
        await platform_client.authorize_pin_reset(context, garbage, bytes(8))
    assert info.value.status == Status.INVALID_REQUEST
    assert "pin_block" in info.value.remote_message
    with pytest.raises(UpstreamRejectedError) as info:
        await platform_client.external_authenticate(replace(context, algorithm="RSA"), bytes(8))
    assert info.value.status == Status.INVALID_REQUEST


def test_pin_block_accounts_agree() -> None:
    """The branch and the key service bind PIN blocks to the same account number."""
    for ssn in ("650102199001011234", "33010619900101123X"):
        assert pin_block_account(ssn) == sim_pin_block_account(ssn) == ssn[:17] + "0"
    with pytest.raises(ValueError, match="check character"):
        pin_block_account("65010219900101")


async def test_cross_region_request_goes_through_the_hub(
    platform_client: DialectPlatformClient, platform_sim: PlatformSimulator
) -> None:
    """A Henan card asked about in Xinjiang is answered by Henan through the hub."""
    henan = platform_sim.provinces["410000"]
    card = henan.add_card(
        "410102198001010011", "李四", "410100", aaz501="410100D15600000500000000000000B9"
    )
    card.aaz502 = "1"
    ref = CardRef(card.aaz500, card.aaz501)
    assert await platform_client.query_status(ref) is AppState.NORMAL
    await platform_client.report_loss(ref, LossType.FORMAL)
    assert card.aaz502 == "2"
    assert platform_sim.hub.routed == 2
    assert platform_sim.counters.received == 2
    cryptogram = await platform_client.external_authenticate(
        KeyServiceContext("K1", "410100", card.aac002, card.aaz500, card.aaz501, "3B"),
        bytes(8),
    )
    keys = derive_card_keys(DEMO_MASTER_KEYS, card.aaz501, "sm4")
    assert cryptogram == external_auth_cryptogram(keys.external_auth, bytes(8), "sm4")


async def test_message_id_makes_a_retry_safe(
    platform_client: DialectPlatformClient, platform_sim: PlatformSimulator
) -> None:
    """The same message id sent twice is applied once and answered twice."""
    card = await _issued(platform_client)
    await platform_client.report_loss(card, LossType.FORMAL, message_id="LOSS-1")
    await platform_client.report_loss(card, LossType.FORMAL, message_id="LOSS-1")
    assert platform_sim.counters.duplicates == 1


def test_already_applied_text_counts_as_success() -> None:
    """An error code whose text says an application exists is the idempotent success."""
    answer = Result("M1", Status.REFUSED, "该人员已存在有效申请，请勿重复申领", {"AAZ500": "X1"})
    assert is_already_applied(answer)
    assert not is_already_applied(Result("M1", Status.REFUSED, "照片不合格"))
    assert base64.b64encode(b"") == b""

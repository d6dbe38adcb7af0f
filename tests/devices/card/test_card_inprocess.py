"""The card application end to end against the in-process card, through the encoder interface."""

from __future__ import annotations

import argparse
import threading
from typing import TYPE_CHECKING

import pytest

from devices.encoder import (
    CardAbsentError,
    CardInserted,
    CardRemoved,
    InProcessEncoder,
    ReaderAdded,
    ReaderEvent,
    SocialSecurityApplication,
)
from protocols import sscard
from protocols.sscard import (
    DEFAULT_PIN,
    SFI_EF05,
    SFI_EF06,
    ApplicationBlockedError,
    AuthenticationFailedError,
    CardAlgorithm,
    CardGeneration,
    ConditionsNotSatisfiedError,
    MacError,
    PinBlockedError,
    SecurityStatusError,
    WrongDataError,
    WrongPinError,
)
from security import cardcrypto
from security.cardcrypto import CardKeyPurpose
from simulators.card import CardProtocol, SimulatedCard
from simulators.card.cli import DEMO_MASTER_KEYS, add_arguments, demo_holder, demo_issuer, run

if TYPE_CHECKING:
    from pathlib import Path

    from tests.devices.card.conftest import CardFactory

READER = "Virtual PCD 00 00"


class KeyService:
    """The key service's side for one card: card keys from the demo masters."""

    def __init__(self, card_id_code: str, algorithm: CardAlgorithm) -> None:
        """Diversify the card keys."""
        self.algorithm = algorithm
        self.keys = cardcrypto.derive_card_keys(DEMO_MASTER_KEYS, card_id_code, algorithm)

    def cryptogram(self, challenge: bytes) -> bytes:
        """EXTERNAL AUTHENTICATE cryptogram."""
        return cardcrypto.external_auth_cryptogram(
            self.keys.external_auth, challenge, self.algorithm
        )

    def mac(self, purpose: CardKeyPurpose, challenge: bytes, header: bytes, data: bytes) -> bytes:
        """A secured command's MAC."""
        cla, ins, p1, p2 = header
        return cardcrypto.mac_command(
            self.keys.for_purpose(purpose), challenge, (cla, ins, p1, p2), data, self.algorithm
        )

    def pin_reset(self, challenge: bytes, pin: str) -> tuple[bytes, bytes]:
        """Enciphered new PIN and MAC for ``84 24 00 01``."""
        enciphered = cardcrypto.encipher_pin(self.keys.pin_reset, pin, self.algorithm)
        mac = self.mac(CardKeyPurpose.PIN_RESET, challenge, b"\x84\x24\x01\x00", enciphered)
        return enciphered, mac


async def _open(
    card: SimulatedCard, events: list[ReaderEvent] | None = None
) -> tuple[InProcessEncoder, SocialSecurityApplication, KeyService]:
    encoder = InProcessEncoder(listener=None if events is None else events.append)
    encoder.insert(READER, card)
    app = SocialSecurityApplication(await encoder.connect(READER))
    await app.select()
    issuer = await app.read_issuer()
    return encoder, app, KeyService(issuer.card_id_code, card.state.algorithm)


async def _set_pin(app: SocialSecurityApplication, pin: str) -> None:
    await app.change_pin(DEFAULT_PIN, pin)


@pytest.mark.parametrize("generation", [3, 2])
@pytest.mark.parametrize("protocol", ["T=0", "T=1"])
async def test_read_both_files(
    issue_card: CardFactory, generation: int, protocol: CardProtocol
) -> None:
    """SELECT then EF05 and EF06 read back as personalized, under T=0 and T=1."""
    card = issue_card(generation=generation, protocol=protocol)
    _encoder, app, _keys = await _open(card)
    assert app.channel.protocol == protocol
    assert await app.read_issuer() == demo_issuer(generation)
    assert await app.read_holder() == demo_holder(generation)
    assert await app.read_generation() == CardGeneration(generation)
    assert card.state.algorithm == ("sm4" if generation == 3 else "3des")


async def test_t0_card_uses_61xx_and_6cxx(issue_card: CardFactory) -> None:
    """The T=0 card answers SELECT with 61xx and READ RECORD Le=00 with 6Cxx."""
    card = issue_card(protocol="T=0")
    encoder, _app, _keys = await _open(card)
    channel = await encoder.connect(READER)
    raw = await channel.transmit_raw(sscard.select_application().to_bytes())
    assert raw[0] == 0x61
    raw = await channel.transmit_raw(sscard.read_record(SFI_EF05, 7).to_bytes())
    assert raw == bytes((0x6C, 11))
    answer = await channel.transmit(sscard.read_record(SFI_EF05, 7))
    assert answer.ok
    assert answer.data[2:] == b"A00000001"


@pytest.mark.parametrize("generation", [3, 2])
async def test_update_record_after_external_authenticate(
    issue_card: CardFactory, generation: int
) -> None:
    """UPDATE RECORD is refused before EXTERNAL AUTHENTICATE and works after it."""
    card = issue_card(generation=generation)
    _encoder, app, keys = await _open(card)
    new_name = sscard.encode_field(sscard.FIELDS[0x09], "李四")
    with pytest.raises(SecurityStatusError):
        await app.update_record(SFI_EF06, 0x09, new_name)
    challenge = await app.get_challenge()
    with pytest.raises(AuthenticationFailedError):
        await app.external_authenticate(bytes(8))
    challenge = await app.get_challenge()
    assert len(challenge) == 8
    await app.external_authenticate(keys.cryptogram(challenge))
    await app.update_record(SFI_EF06, 0x09, new_name)
    assert (await app.read_holder()).name == "李四"
    with pytest.raises(WrongDataError):
        await app.update_record(SFI_EF06, 0x07, new_name)


@pytest.mark.parametrize("retries", [3, 6])
async def test_wrong_pin_counts_down_to_lock(issue_card: CardFactory, retries: int) -> None:
    """Each wrong PIN answers 63Cx with one try fewer; at 0 the PIN is locked."""
    card = issue_card(retries=retries)
    _encoder, app, _keys = await _open(card)
    await _set_pin(app, "135790")
    for left in range(retries - 1, 0, -1):
        with pytest.raises(WrongPinError) as info:
            await app.verify("000000")
        assert info.value.tries_left == left
    with pytest.raises(PinBlockedError):
        await app.verify("000000")
    with pytest.raises(PinBlockedError) as blocked:
        await app.verify("135790")
    assert blocked.value.sw == 0x6983


async def test_unlock_keeps_pin_and_refills_counter(issue_card: CardFactory) -> None:
    """Unlock (84 24 00 00 + MAC) refills the counter; the old PIN still works."""
    card = issue_card(retries=3)
    _encoder, app, keys = await _open(card)
    await _set_pin(app, "135790")
    for _ in range(3):
        with pytest.raises((WrongPinError, PinBlockedError)):
            await app.verify("000000")
    await app.get_challenge()
    with pytest.raises(MacError):
        await app.pin_unlock(b"\x00\x00\x00\x00")
    challenge = await app.get_challenge()
    await app.pin_unlock(keys.mac(CardKeyPurpose.PIN_UNLOCK, challenge, b"\x84\x24\x00\x00", b""))
    assert card.state.retries_left == 3
    await app.verify("135790")
    with pytest.raises(ConditionsNotSatisfiedError):
        await app.pin_unlock(b"\x00\x00\x00\x00")


async def test_pin_reset_then_verify(issue_card: CardFactory) -> None:
    """After PIN reset the new PIN verifies and the old one fails."""
    card = issue_card(generation=3)
    _encoder, app, keys = await _open(card)
    await _set_pin(app, "135790")
    await app.pin_reset(*keys.pin_reset(await app.get_challenge(), "864200"))
    await app.verify("864200")
    with pytest.raises(WrongPinError):
        await app.verify("135790")


async def test_pin_reset_3des_card_while_locked(issue_card: CardFactory) -> None:
    """A second-generation card takes a 3DES PIN reset even while locked."""
    card = issue_card(generation=2, retries=3)
    _encoder, app, keys = await _open(card)
    for _ in range(3):
        with pytest.raises((WrongPinError, PinBlockedError)):
            await app.verify("000000")
    await app.pin_reset(*keys.pin_reset(await app.get_challenge(), "97531"))
    await app.verify("97531")


async def test_default_pin_refused(issue_card: CardFactory) -> None:
    """The default PIN is refused for VERIFY, as a new PIN, and as a reset PIN."""
    card = issue_card()
    _encoder, app, keys = await _open(card)
    with pytest.raises(ConditionsNotSatisfiedError):
        await app.verify(DEFAULT_PIN)
    with pytest.raises(WrongDataError):
        await app.change_pin(DEFAULT_PIN, DEFAULT_PIN)
    await _set_pin(app, "135790")
    with pytest.raises(WrongDataError):
        await app.pin_reset(*keys.pin_reset(await app.get_challenge(), DEFAULT_PIN))
    with pytest.raises(WrongDataError):
        await app.change_pin("135790", DEFAULT_PIN)
    await app.verify("135790")
    assert card.state.retries_left == card.state.retries_max


async def test_application_block_and_unblock(issue_card: CardFactory) -> None:
    """A blocked application refuses VERIFY until it is unblocked with a MAC."""
    card = issue_card()
    _encoder, app, keys = await _open(card)
    await _set_pin(app, "135790")
    challenge = await app.get_challenge()
    await app.application_block(
        keys.mac(CardKeyPurpose.APP_MAINTENANCE, challenge, b"\x84\x1e\x00\x00", b"")
    )
    with pytest.raises(ApplicationBlockedError):
        await app.verify("135790")
    with pytest.raises(ApplicationBlockedError):
        await app.select()
    challenge = await app.get_challenge()
    await app.application_unblock(
        keys.mac(CardKeyPurpose.APP_MAINTENANCE, challenge, b"\x84\x18\x00\x00", b"")
    )
    await app.verify("135790")


async def test_card_keeps_its_data_across_restarts(issue_card: CardFactory) -> None:
    """PIN, retry counter and records survive loading the card file again."""
    card = issue_card(retries=6)
    _encoder, app, keys = await _open(card)
    await _set_pin(app, "135790")
    await app.external_authenticate(keys.cryptogram(await app.get_challenge()))
    await app.update_record(SFI_EF05, 0x07, sscard.encode_field(sscard.FIELDS[0x07], "B00000002"))
    with pytest.raises(WrongPinError):
        await app.verify("000000")
    assert card.path is not None
    reloaded = SimulatedCard.load(card.path)
    _encoder2, app2, _keys2 = await _open(reloaded)
    assert (await app2.read_issuer()).card_number == "B00000002"
    assert reloaded.state.retries_left == 5
    await app2.verify("135790")
    assert card.path.stat().st_mode & 0o777 == 0o600


async def test_events_and_removed_card(issue_card: CardFactory) -> None:
    """Insert and remove are reported; a channel to a removed card fails as absent."""
    events: list[ReaderEvent] = []
    card = issue_card()
    encoder, app, _keys = await _open(card, events)
    assert events == [ReaderAdded(READER), CardInserted(READER, card.atr)]
    encoder.remove(READER)
    assert events[2:] == [CardRemoved(READER)]
    with pytest.raises(CardAbsentError):
        await app.select()
    with pytest.raises(CardAbsentError):
        await encoder.connect(READER)


def test_sim_card_command_creates_the_card_file(tmp_path: Path) -> None:
    """``branchd sim card`` personalizes a card file on first run and stops when told."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    state = tmp_path / "card.json"
    args = parser.parse_args(["--state", str(state), "--retries", "6", "--protocol", "T=1"])
    stop = threading.Event()
    stop.set()
    assert run(args, stop) == 0
    card = SimulatedCard.load(state)
    assert (card.state.retries_max, card.state.protocol) == (6, "T=1")

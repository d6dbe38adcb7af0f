"""A branch with PIN services: the daemon over pcscd/vpcd, the platform simulator, a pad.

The daemon runs with ``[upstream]`` (the platform simulator over real mutual
TLS: Xinjiang for the branch, Chongqing behind the national hub),
``[devices]`` (a local encoder on the vpcd reader of the session's pcscd, the
telemetry broker) and ``[pin]`` (the teller's window: that encoder and a pad).
The pad is :class:`KeyStorePad`: it encrypts what a test "types" under the
window's terminal PIN key, as a pad does; it stands in until the PIN pad
simulator's driver is wired into the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from devices.encoder import EncoderError, PcscEncoder, SocialSecurityApplication
from gateway.assembly import open_keystore
from gateway.cardservices import CardServiceRefusal, Prompt
from gateway.cardservices.routes import PROBLEMS
from gateway.config import parse_config
from gateway.daemon import Daemon
from gateway.runtime.problems import ProblemError
from gateway.upstream import PeerKeysFile, publish_identity
from protocols.sscard import HolderData, IssuerData, SscardError
from security.cardcrypto import CardMasterKeys
from security.keystore import Algorithm, KeyUsage, PinBlockFormat
from security.pki import CertificateRole, init_ca, issue
from simulators.card import SimulatedCard
from simulators.card.cli import DEMO_MASTER_KEYS
from simulators.card.vpcd import VPCD_PORT
from simulators.platform import (
    DEMO_ZONE_PIN_KEY,
    PlatformSimulator,
    SoftwareKeyService,
    platform_name,
)
from tests.devices.agent.conftest import broker  # noqa: F401 - fixture
from tests.devices.card.conftest import Pcscd, VpcdCard, pcscd, wait_card_absent  # noqa: F401
from tests.fakes import FakeClock
from tests.gateway.branch import Branch
from tests.gateway.builders import TOKENS, master_key_file
from tests.gateway.upstream.conftest import BRANCH, PROVINCE, Pki

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from security.keystore import EncryptedPinBlock, KeyStore
    from tests.devices.agent.conftest import Mosquitto

TPK = "tpk-window-1"
ZONE_KEY = "zone-pin"
CHONGQING_SSN = "110105198505050038"
CHONGQING_CARD_ID = "500000D15600000500000000000000C7"
XINJIANG_SSN = "650102199001011239"
XINJIANG_CARD_ID = "652300D15600000500000000000000A1"
#: Chongqing's own master keys: its cards open with nobody else's.
CHONGQING_MASTERS = CardMasterKeys(
    external_auth=bytes.fromhex("A1A1A1A1A1A1A1A1B2B2B2B2B2B2B2B2"),
    pin_reset=bytes.fromhex("C3C3C3C3C3C3C3C3D4D4D4D4D4D4D4D4"),
    pin_unlock=bytes.fromhex("E5E5E5E5E5E5E5E5F6F6F6F6F6F6F6F6"),
    app_maintenance=bytes.fromhex("0707070707070707A8A8A8A8A8A8A8A8"),
)
#: The second vpcd reader (port 35964): the card tests use the first.
WINDOW_READER = "Virtual PCD 00 01"
WINDOW_PORT = VPCD_PORT + 1
_CARD_SEEN_SECONDS = 15.0
_SETTLED_PROBES = 3


def _unplug(slot: VpcdCard) -> None:
    """Disconnect the card from vpcd and wait until pcscd has seen the window's reader empty."""
    thread = slot._thread
    if thread is None:
        return
    slot._stop.set()
    thread.join(timeout=5)
    slot._thread = None
    wait_card_absent(WINDOW_READER)


async def _answers(pcsc: PcscEncoder) -> bool:
    """Whether the card in the window's reader answers SELECT now."""
    if not pcsc.card_present(WINDOW_READER):
        return False
    try:
        channel = await pcsc.connect(WINDOW_READER)
    except EncoderError:
        return False
    try:
        await SocialSecurityApplication(channel).select()
    except (EncoderError, SscardError):
        return False
    finally:
        with contextlib.suppress(EncoderError):
            await channel.close()
    return True


@dataclass
class KeyStorePad:
    """A PIN pad: what the holder "types" comes out as a block under the window's TPK."""

    store: KeyStore
    typed: list[str] = field(default_factory=list, repr=False)
    shown: list[Prompt] = field(default_factory=list)
    blocks: list[EncryptedPinBlock] = field(default_factory=list)

    def type_in(self, *pins: str) -> None:
        """Queue the PINs the holder will enter, in order."""
        self.typed.extend(pins)

    def _block(self, account: str) -> EncryptedPinBlock:
        block = self.store.encrypt_pin_block(TPK, self.typed.pop(0), account, PinBlockFormat.ISO_0)
        self.blocks.append(block)
        return block

    async def read_pin(self, *, account: str, prompt: Prompt, timeout: float) -> EncryptedPinBlock:  # noqa: ASYNC109
        """One PIN."""
        del timeout
        self.shown.append(prompt)
        return self._block(account)

    async def read_new_pin(self, *, account: str, timeout: float) -> EncryptedPinBlock:  # noqa: ASYNC109
        """A new PIN (the pad compared both entries)."""
        del timeout
        self.shown.append(Prompt.ENTER_NEW)
        return self._block(account)

    async def show(self, prompt: Prompt) -> None:
        """Show a prompt."""
        self.shown.append(prompt)


@contextlib.contextmanager
def as_problem() -> Iterator[None]:
    """A refusal of the card services, raised as the problem the API answers it with.

    The problem is the card services section's (:data:`gateway.cardservices.routes.PROBLEMS`),
    with the refusal's texts and members, as the problem middleware renders it.
    """
    try:
        yield
    except CardServiceRefusal as refusal:
        problem = PROBLEMS[refusal.reason]
        raise ProblemError(
            problem, refusal.detail, refusal.detail_zh, **refusal.members
        ) from refusal


def make_card(card_id_code: str, ssn: str, masters: CardMasterKeys, path: Path) -> SimulatedCard:
    """A third-generation T=0 card with 3 PIN tries, still with the initial PIN."""
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
        path=path,
    )


@dataclass
class PinBranch:
    """The running branch, its pad, the platform simulator and the card slot."""

    branch: Branch
    pad: KeyStorePad
    platform: PlatformSimulator
    pcscd: Pcscd
    slot: VpcdCard | None = None

    @property
    def daemon(self) -> Daemon:
        """The daemon."""
        return self.branch.daemon

    async def insert(self, card: SimulatedCard) -> None:
        """Put ``card`` in the window's reader and wait until the daemon's encoder sees it."""
        await self.remove()
        self.slot = VpcdCard(card, port=WINDOW_PORT)
        self.slot.insert()
        pcsc = self.daemon.devices.pcsc if self.daemon.devices else None
        assert pcsc is not None
        # vpcd powers a new card up more than once: wait until pcscd has settled and a
        # SELECT goes through twice in a row (waiting on pcscd, not on a timer).
        settled = 0
        async with asyncio.timeout(_CARD_SEEN_SECONDS):
            while settled < _SETTLED_PROBES:
                await asyncio.sleep(0.1)
                settled = settled + 1 if await _answers(pcsc) else 0

    async def remove(self) -> None:
        """Take the card out."""
        if self.slot is not None:
            await asyncio.to_thread(_unplug, self.slot)
            self.slot = None

    async def call(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST as the teller of the window."""
        status, answer, _ = await self.branch.call("POST", path, body=body)
        return status, answer


@pytest.fixture
def clock() -> FakeClock:
    """One manual clock for the daemon and the simulator (envelope times agree)."""
    return FakeClock(autojump=False)


@pytest.fixture
def pki(tmp_path: Path, clock: FakeClock) -> Pki:
    """A CA, the simulator's server certificate and the branch's client certificate."""
    directory = tmp_path / "pki"
    init_ca(directory, BRANCH, clock.now())
    issue(directory, "upstream-sim", CertificateRole.SERVER, clock.now())
    issue(directory, "branchd", CertificateRole.PEER, clock.now())
    return Pki(directory)


def pin_config(  # noqa: PLR0913 - the parts of the branch's configuration
    tmp_path: Path,
    database_url: str,
    pki: Pki,
    platform_url: str,
    broker_port: int,
    *,
    pinpads: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The branch's configuration: key store, terminals, upstream, devices, [pin]."""
    return {
        "data_dir": str(tmp_path),
        "branch": {"id": BRANCH, "region": "652300"},
        "server": {"host": "127.0.0.1", "port": 0},
        "database": {"url": database_url},
        "keystore": {"master_key": {"file": str(master_key_file(tmp_path))}},
        "terminals": [
            {"id": f"{role}-01", "role": role, "token": token} for role, token in TOKENS.items()
        ],
        "upstream": {
            "peer_keys": str(tmp_path / "peer-keys.json"),
            "tls": {
                "cert": str(pki.directory / "branchd.pem"),
                "key": str(pki.directory / "branchd.key"),
                "ca": str(pki.directory / "ca.pem"),
            },
            "platform": {
                "url": platform_url,
                "dialect": "json",
                "receiver": platform_name(PROVINCE),
            },
        },
        "devices": {
            "province": PROVINCE,
            "branch": BRANCH,
            "broker": {"host": "127.0.0.1", "port": broker_port},
            "encoders": [{"id": "encoder-1", "reader": WINDOW_READER}],
            "pinpads": pinpads or [],
        },
        "pin": {
            "zone_pin_key": ZONE_KEY,
            "windows": [{"terminal": "teller-01", "encoder": "encoder-1", "pinpad": "pinpad-1"}],
        },
    }


@pytest.fixture
def window_pads() -> list[dict[str, Any]]:
    """``[[devices.pinpads]]`` of the branch: none (the tests type on a KeyStorePad)."""
    return []


@pytest.fixture
def window_tpk() -> bytes | None:
    """The TPK material the pads of ``window_pads`` hold (``None``: a random TPK)."""
    return None


@pytest.fixture
async def pin_branch(  # noqa: PLR0913, PLR0917 - fixtures
    tmp_path: Path,
    database_url: str,
    clock: FakeClock,
    pki: Pki,
    pcscd: Pcscd,  # noqa: F811 - the fixture
    broker: Mosquitto,  # noqa: F811 - the fixture
    window_pads: list[dict[str, Any]],
    window_tpk: bytes | None,
) -> AsyncIterator[PinBranch]:
    """The branch with PIN services, talking to the platform simulator (both provinces).

    With ``window_pads`` the daemon drives those pads itself (no KeyStorePad).
    """
    peers = tmp_path / "peer-keys.json"
    simulator = PlatformSimulator(
        ssl_context=pki.server(),
        trusted=PeerKeysFile(peers),
        now=clock.now,
        key_service=SoftwareKeyService(masters={"500000": CHONGQING_MASTERS}),
    )
    async with simulator:
        for identity in simulator.identities.values():
            publish_identity(peers, identity)
        config = parse_config(
            pin_config(
                tmp_path,
                database_url,
                pki,
                simulator.url(PROVINCE, "json"),
                broker.port,
                pinpads=window_pads,
            )
        )
        store = open_keystore(config, create=True)
        assert store is not None
        if window_tpk is None:
            store.generate_key(TPK, Algorithm.SM4_128, KeyUsage.PIN)
        else:
            store.import_key(TPK, Algorithm.SM4_128, KeyUsage.PIN, window_tpk)
        store.import_key(ZONE_KEY, Algorithm.SM4_128, KeyUsage.PIN, DEMO_ZONE_PIN_KEY)
        store.close()
        daemon = Daemon(config, clock=clock, rng=random.Random(7))
        await daemon.start(migrate=True)
        try:
            pad_store = open_keystore(config)
            assert pad_store is not None
            pad = KeyStorePad(pad_store)
            assert daemon.cards is not None
            if not window_pads:
                daemon.cards.pads["pinpad-1"] = pad
            async with aiohttp.ClientSession() as http:
                handle = PinBranch(Branch(daemon, http), pad, simulator, pcscd)
                try:
                    yield handle
                finally:
                    await handle.remove()
        finally:
            await daemon.stop()


def add_chongqing_card(simulator: PlatformSimulator, path: Path) -> SimulatedCard:
    """A Chongqing card, registered (normal) in Chongqing's platform, not yet in a reader."""
    registered = simulator.provinces["500000"].add_card(
        CHONGQING_SSN, "李四", "500100", aaz501=CHONGQING_CARD_ID, version="3.00"
    )
    registered.aaz502 = "1"
    card = make_card(CHONGQING_CARD_ID, CHONGQING_SSN, CHONGQING_MASTERS, path)
    return _renumber(card, registered.aaz500)


def add_xinjiang_card(simulator: PlatformSimulator, path: Path) -> SimulatedCard:
    """A card of the branch's own province, registered (normal) in Xinjiang's platform."""
    registered = simulator.provinces[PROVINCE].add_card(
        XINJIANG_SSN, "王五", "652300", aaz501=XINJIANG_CARD_ID, version="3.00"
    )
    registered.aaz502 = "1"
    card = make_card(XINJIANG_CARD_ID, XINJIANG_SSN, DEMO_MASTER_KEYS, path)
    return _renumber(card, registered.aaz500)


def _renumber(card: SimulatedCard, card_number: str) -> SimulatedCard:
    """Write the platform's card number into EF05 record 07 (as personalization does)."""
    from protocols.sscard import encode_tlv  # noqa: PLC0415

    card.state.records["ef05"]["7"] = encode_tlv(0x07, card_number.encode()).hex()
    card.save()
    return card

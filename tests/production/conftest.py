"""Fixtures for the production tests: blank cards, printer mechanics, upstream fakes.

The printer's card path and the encoder's reader are one piece of hardware:
:class:`Mechanics` plays that coupling. After every printer command it looks at
where the printer says the card is (a fake's own position, or the simulator
model's) and moves the simulated chip card accordingly: a blank from the stack
when the printer takes one from the feeder, into the contact reader while the
card is at the contact station, to the output tray or the reject box when it
leaves. It outlives controllers, as hardware outlives a crashed daemon.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from PIL import Image

from devices.encoder import InProcessEncoder
from production import (
    KeyRequest,
    Order,
    PreOpened,
    QcVerdict,
    ReturnData,
    UpstreamRefusedError,
)
from protocols.printer.commands import CardPosition, PrinterStatus
from simulators.card import SimulatedCard
from simulators.card.blanks import FaultyCard
from simulators.platform.keyservice import CardKeyRef, SoftwareKeyService

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from devices.printer.errors import PrinterError
    from production import JobRecord, PrinterPort
    from protocols.printer.frames import Depth, Panel

READER = "Virtual PCD 00 00"


Card = SimulatedCard | FaultyCard


def holder_ssn(card: Card) -> str | None:
    """The social security number written on a card's chip, if any."""
    record = card.state.records["ef06"].get(str(0x08))
    return bytes.fromhex(record)[2:].decode() if record else None


@dataclass
class Mechanics:
    """The card path of one printer coupled to its contact reader (see the module)."""

    printer: PrinterPort
    position: Callable[[], CardPosition]
    encoder: InProcessEncoder
    blanks: list[Card]
    reader: str = READER
    inside: Card | None = None
    output: list[Card] = field(default_factory=list)
    rejected: list[Card] = field(default_factory=list)
    print_gate: asyncio.Event | None = None
    printing: asyncio.Event = field(default_factory=asyncio.Event)
    rejected_one: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def connected(self) -> bool:
        """Whether the printer is online."""
        return self.printer.connected

    def sync(self, command: str) -> None:
        """Move the chip card to where the printer says the card is."""
        where = self.position()
        if where is not CardPosition.NONE and self.inside is None:
            self.inside = self.blanks.pop(0)
        card_in_reader = self.encoder.card_present(self.reader)
        if where is CardPosition.CONTACT and self.inside is not None:
            if not card_in_reader:
                self.encoder.insert(self.reader, self.inside)
        elif card_in_reader:
            self.encoder.remove(self.reader)
        if where is CardPosition.NONE and self.inside is not None:
            (self.rejected if command == "reject" else self.output).append(self.inside)
            if command == "reject":
                self.rejected_one.set()
            self.inside = None

    async def _do(self, command: str, action: Any) -> Any:  # noqa: ANN401 - passes through
        try:
            return await action
        finally:
            self.sync(command)

    async def status(self) -> PrinterStatus:
        """The printer's status."""
        return await self.printer.status()

    async def insert_card(self) -> None:
        """Feed (or move the card inside) to the contact station."""
        await self._do("insert", self.printer.insert_card())

    async def print_card(self, panels: Sequence[tuple[Panel, Depth, bytes]]) -> None:
        """Print (held at the gate, when a test set one)."""
        self.printing.set()
        if self.print_gate is not None:
            await self.print_gate.wait()
        await self._do("print", self.printer.print_card(panels))

    async def eject_card(self) -> None:
        """Eject."""
        await self._do("eject", self.printer.eject_card())

    async def reject_card(self) -> None:
        """Reject."""
        await self._do("reject", self.printer.reject_card())

    async def clear_error(self) -> None:
        """Clear a held error."""
        await self._do("clear", self.printer.clear_error())


class FakePrinter:
    """A printer in memory: a card position, a feeder count, injectable errors."""

    def __init__(self, feeder: int = 10) -> None:
        """Load ``feeder`` blanks."""
        self.connected = True
        self.feeder = feeder
        self.card = CardPosition.NONE
        self.fail: dict[str, PrinterError] = {}
        self.commands: list[str] = []

    def _check(self, name: str) -> None:
        self.commands.append(name)
        error = self.fail.pop(name, None)
        if error is not None:
            raise error

    async def status(self) -> PrinterStatus:
        """Sensors and the card position."""
        return PrinterStatus(
            feeder_loaded=self.feeder > 0,
            feeder_near_empty=False,
            cover_open=False,
            card_at_output=False,
            reject_box_full=False,
            card_position=self.card,
            ribbon_type="YMCKO",
            ribbon_remaining=100,
        )

    async def insert_card(self) -> None:
        """Feeder to contact."""
        self._check("insert")
        if self.card is CardPosition.NONE:
            self.feeder -= 1
        self.card = CardPosition.CONTACT

    async def print_card(self, panels: Sequence[tuple[Panel, Depth, bytes]]) -> None:
        """Print: the card moves under the head."""
        assert panels
        self._check("print")
        self.card = CardPosition.PRINT

    async def eject_card(self) -> None:
        """Out."""
        self._check("eject")
        self.card = CardPosition.NONE

    async def reject_card(self) -> None:
        """To the reject box."""
        self._check("reject")
        self.card = CardPosition.NONE

    async def clear_error(self) -> None:
        """Nothing held."""
        self._check("clear")


class SimKeyService:
    """The platform simulator's key service, behind the production port."""

    def __init__(self) -> None:
        """Use the demo master keys."""
        self.inner = SoftwareKeyService()
        self.calls = 0
        #: A status the key service refuses with (an answer, not an outage).
        self.refuse: str | None = None

    async def external_authenticate(self, request: KeyRequest, challenge: bytes) -> bytes:
        """Ask the simulator's key service."""
        self.calls += 1
        if self.refuse is not None:
            raise UpstreamRefusedError("key-service", self.refuse)
        ref = CardKeyRef(request.card_id_code, request.algorithm, request.key_version)
        return self.inner.external_authenticate(ref, challenge)


def photo_png() -> bytes:
    """A small grey photo."""
    buffer = io.BytesIO()
    Image.new("L", (90, 120), 100).save(buffer, format="PNG")
    return buffer.getvalue()


class FakePlatform:
    """A platform that de-duplicates by message id, as the real one does."""

    def __init__(self) -> None:
        """Nothing seen yet."""
        self.numbers: dict[str, str] = {}
        self.returned: dict[str, ReturnData] = {}
        self.enabled: dict[str, str] = {}
        self.fail_pre_open = 0
        #: A status the platform refuses pre-open with (an answer, not an outage).
        self.refuse_pre_open: str | None = None

    async def pre_open(self, order: Order, *, message_id: str) -> PreOpened:
        """A card number per application (stable), and a photo."""
        del message_id
        if self.fail_pre_open:
            self.fail_pre_open -= 1
            raise ConnectionError("platform down")
        if self.refuse_pre_open is not None:
            raise UpstreamRefusedError("platform", self.refuse_pre_open)
        number = self.numbers.setdefault(order.application_id, f"B{len(self.numbers) + 1:08d}")
        return PreOpened(number, photo_png())

    async def return_data(self, data: ReturnData, *, message_id: str) -> None:
        """Keep the return data once per message id."""
        self.returned.setdefault(message_id, data)

    async def enable(self, card_number: str, card_id_code: str, *, message_id: str) -> None:
        """Keep the enablement once per message id."""
        del card_id_code
        self.enabled.setdefault(message_id, card_number)


class FakeBank:
    """A bank core that de-duplicates by message id."""

    def __init__(self) -> None:
        """Nothing bound yet."""
        self.bound: dict[str, str] = {}

    async def bind_account(self, order: Order, card_number: str, *, message_id: str) -> None:
        """Bind once per message id."""
        del order
        self.bound.setdefault(message_id, card_number)


class AutoQc:
    """A teller who passes every card, except those listed to fail."""

    def __init__(self, fail_seqs: frozenset[int] = frozenset()) -> None:
        """Fail the job's cards with these sequence numbers."""
        self.fail_seqs = fail_seqs
        self.seen: list[str] = []

    async def inspect(self, job: JobRecord) -> QcVerdict:
        """Pass or fail at once."""
        self.seen.append(job.job_id)
        if job.card_seq in self.fail_seqs:
            return QcVerdict(passed=False, operator="teller-1", reason="print_defect")
        return QcVerdict(passed=True, operator="teller-1")


class SealerForTests:
    """AES-256-GCM with the field name as associated data (as the vault does)."""

    def __init__(self) -> None:
        """A fresh key."""
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))
        self.sealed = 0  # texts sealed so far

    def seal(self, field: str, text: str) -> bytes:
        """Encrypt."""
        self.sealed += 1
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, text.encode(), field.encode())

    def open(self, field: str, blob: bytes) -> str:
        """Decrypt."""
        return self._aead.decrypt(blob[:12], blob[12:], field.encode()).decode()


def make_order(application_id: str = "APP-1", ssn: str = "33010619900101123X") -> Order:
    """A window application for a made-up person."""
    return Order(
        application_id=application_id,
        ssn=ssn,
        name="张三",
        sex="1",
        ethnicity="01",
        birth_date=dt.date(1990, 1, 1),
        region="330100",
        name_extension="张三",
    )


@pytest.fixture
def encoder() -> InProcessEncoder:
    """An in-process encoder with two readers."""
    return InProcessEncoder(readers=(READER, "Virtual PCD 00 01"))

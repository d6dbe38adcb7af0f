"""Blank cards as the card maker delivers them, and a blank with a broken chip.

A blank carries what the card maker writes at the factory: the card
identification code and the spec version in EF05, and the card keys
diversified from the issuer's master keys (here :data:`DEMO_MASTER_KEYS`).
EF06 is empty and the PIN is the issuer's default until the branch
personalizes the card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocols.sscard import DEFAULT_PIN, algorithm_for
from security.cardcrypto import CardKeyPurpose, derive_card_keys
from simulators.card.card import ChipState, SimulatedCard
from simulators.card.cli import DEMO_MASTER_KEYS, demo_issuer

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["UPDATE_RECORD_REFUSED", "FaultyCard", "blank_card"]

#: What a chip with a failing EEPROM answers to UPDATE RECORD (memory failure).
UPDATE_RECORD_REFUSED = b"\x65\x81"
_INS_UPDATE_RECORD = 0xDC


def blank_card(
    serial: int, *, generation: int = 3, path: Path | None = None, region: str = "330100"
) -> SimulatedCard:
    """A blank as it comes from the card maker: card id code, spec version, keys.

    Args:
        serial: The blank's serial number; it makes the card identification
            code (see :func:`~simulators.card.cli.demo_issuer`) unique.
        generation: 3 (SM4 keys) or 2 (3DES keys).
        path: Save the card's state there after every change (and now).
        region: The issuing region in the card identification code (six digits).
    """
    issuer = demo_issuer(generation, serial, region)
    algorithm = algorithm_for(issuer.generation)
    keys = derive_card_keys(DEMO_MASTER_KEYS, issuer.card_id_code, algorithm)
    records = issuer.to_records()
    state = ChipState(
        algorithm=algorithm,
        protocol="T=0",
        records={"ef05": {"1": records[1].hex(), "3": records[3].hex()}, "ef06": {}},
        keys={p.value: keys.for_purpose(p).hex() for p in CardKeyPurpose},
        pin=DEFAULT_PIN,
        pin_is_default=True,
        retries_max=3,
        retries_left=3,
    )
    card = SimulatedCard(state, path=path)
    if path is not None:
        card.save()
    return card


class FaultyCard:
    """A blank whose EEPROM refuses every write (``6581``); everything else works."""

    def __init__(self, card: SimulatedCard) -> None:
        """Wrap ``card``."""
        self.card = card
        self.state = card.state

    @property
    def atr(self) -> bytes:
        """The wrapped card's ATR."""
        return self.card.atr

    def power_on(self) -> None:
        """Power the card."""
        self.card.power_on()

    def power_off(self) -> None:
        """Remove power."""
        self.card.power_off()

    def reset(self) -> None:
        """Warm reset."""
        self.card.reset()

    def transmit(self, apdu: bytes) -> bytes:
        """Refuse UPDATE RECORD; answer everything else."""
        if len(apdu) > 1 and apdu[1] == _INS_UPDATE_RECORD:
            return UPDATE_RECORD_REFUSED
        return self.card.transmit(apdu)

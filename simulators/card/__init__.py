"""Social-security cards for the tests and the demo: in-process, or behind vpcd.

:class:`SimulatedCard` implements the card side of docs/protocols/sscard.md;
:func:`serve_vpcd` puts one into the vsmartcard ``vpcd`` virtual reader of a
running pcscd, and :func:`main` is ``branchd sim card``.
"""

from simulators.card.card import ATR_T0, ATR_T1, CardProtocol, ChipState, SimulatedCard, atr_for

__all__ = ["ATR_T0", "ATR_T1", "CardProtocol", "ChipState", "SimulatedCard", "atr_for"]

"""The station's chip in pcscd's vpcd reader, inserted and removed in step with the printer.

:class:`VpcdSlot` connects a card to the vpcd reader driver on a thread
(:func:`simulators.card.vpcd.serve_vpcd`) and, as a PC/SC client of the same
pcscd, waits until pcscd *reports* the change: :meth:`VpcdSlot.insert` returns
once the reader shows a card present (pcscd has powered it up and published
its ATR), :meth:`VpcdSlot.remove` once the reader shows empty. pcscd polls the
vpcd reader about every 0.4 s, so each takes up to about that long. Waiting
for the removal before the next card connects matters: a card replaced
between two polls would look to pcscd like the same card, power-cycled under
a host's open session.

Both block (the station runs them on a worker thread). When pcscd cannot be
asked (no pyscard, no pcscd), they return ``False`` at once after connecting
or disconnecting the card.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Final

import structlog

from simulators.card.vpcd import VPCD_PORT, serve_vpcd

if TYPE_CHECKING:
    from simulators.card.vpcd import VirtualCard

__all__ = ["VpcdSlot", "reader_for_port"]

log = structlog.get_logger(__name__)

#: Longest single wait on pcscd, in milliseconds (the overall timeout is checked between).
_POLL_MS: Final = 500


def reader_for_port(port: int) -> str:
    """The name pcscd gives the vpcd reader on ``port`` (Debian: 35963 is ``Virtual PCD 00 00``)."""
    return f"Virtual PCD 00 {max(port - VPCD_PORT, 0):02d}"


def _scard() -> Any | None:  # noqa: ANN401 - pyscard has no type information
    try:
        from smartcard import scard  # noqa: PLC0415 - only when a station serves vpcd
    except ImportError:
        return None
    return scard


def _wait_reader(reader: str, *, present: bool, atr: bytes | None, timeout: float) -> bool:
    """Block until pcscd reports ``reader`` with a card (``present``) or empty; False on timeout."""
    scard = _scard()
    if scard is None:
        return False
    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result:
        return False
    try:
        known = scard.SCARD_STATE_UNAWARE
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            result, states = scard.SCardGetStatusChange(
                context, min(_POLL_MS, int(left * 1000) + 1), [(reader, known)]
            )
            if result == scard.SCARD_E_TIMEOUT:
                continue
            if result:
                return False
            _, state, reader_atr = states[0]
            if present:
                card_up = state & scard.SCARD_STATE_PRESENT and not state & scard.SCARD_STATE_MUTE
                if card_up and (atr is None or bytes(reader_atr) == atr):
                    return True
            elif state & scard.SCARD_STATE_EMPTY:
                return True
            known = state & ~scard.SCARD_STATE_CHANGED
        return False
    finally:
        scard.SCardReleaseContext(context)


class VpcdSlot:
    """One vpcd reader of the local pcscd, holding at most one card (see the module)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = VPCD_PORT,
        *,
        reader: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        """The vpcd reader at ``host:port``.

        Args:
            host: Where pcscd's vpcd driver listens.
            port: Its port (one per virtual reader).
            reader: The PC/SC reader name (default: :func:`reader_for_port`).
            timeout: Longest wait for pcscd to report an insertion or a removal.
        """
        self.host = host
        self.port = port
        self.reader = reader or reader_for_port(port)
        self.timeout = timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def occupied(self) -> bool:
        """Whether a card is connected (or connecting)."""
        return self._thread is not None

    def insert(self, card: VirtualCard) -> bool:
        """Connect ``card`` (reconnecting while pcscd is away); wait until pcscd shows it.

        Returns:
            Whether pcscd reported the card present within the timeout.
        """
        self.remove()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=serve_vpcd,
            args=(card, self._stop),
            kwargs={"host": self.host, "port": self.port, "retry_seconds": 0.1},
            name=f"station-vpcd-{self.port}",
            daemon=True,
        )
        self._thread.start()
        shown = _wait_reader(self.reader, present=True, atr=card.atr, timeout=self.timeout)
        if not shown:
            log.warning("station_vpcd_insert_unconfirmed", reader=self.reader, port=self.port)
        return shown

    def remove(self) -> bool:
        """Disconnect the card, if any; wait until pcscd shows the reader empty.

        Returns:
            Whether pcscd reported the reader empty within the timeout
            (``True`` when there was no card).
        """
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        self._stop.set()
        thread.join()
        shown = _wait_reader(self.reader, present=False, atr=None, timeout=self.timeout)
        if not shown:
            log.warning("station_vpcd_removal_unconfirmed", reader=self.reader, port=self.port)
        return shown

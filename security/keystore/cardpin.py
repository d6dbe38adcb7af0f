"""Card PIN commands built inside the key store: the PIN reaches the chip, nowhere else.

VERIFY and CHANGE PIN carry the PIN to the card as BCD (docs/protocols/sscard.md).
The key store opens the PIN pad's encrypted PIN block and builds the command
itself (:meth:`security.keystore.KeyStore.card_verify_command`,
:meth:`~security.keystore.KeyStore.card_change_pin_command`), so no clear PIN
ever passes through the daemon's own code. What it returns is a
:class:`CardPinCommand`: the command for the encoder, which shows neither its
data in ``repr``/``str``/``format`` nor lets itself be pickled or copied. The
bytes exist in process memory only between the key store and the card reader,
for the one exchange.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from protocols.apdu import CommandApdu

__all__ = ["CardPinCommand"]


class CardPinCommand:
    """A VERIFY or CHANGE PIN command holding a PIN; opaque except to the encoder.

    Attributes:
        name: ``"verify"`` or ``"change_pin"`` (for errors and logs).
    """

    __slots__ = ("_command", "name")

    def __init__(self, name: str, command: CommandApdu) -> None:
        """Wrap ``command`` (built by the key store)."""
        self.name = name
        self._command = command

    def command(self) -> CommandApdu:
        """The APDU to transmit; hand it to the encoder and to nothing else."""
        return self._command

    def __repr__(self) -> str:
        """Name the command, never its data."""
        return f"<CardPinCommand {self.name} header={self._command.header.hex()}>"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        """Format as the ``repr``, whatever the spec."""
        return repr(self)

    def __reduce__(self) -> NoReturn:
        """Refuse pickling."""
        raise TypeError("CardPinCommand cannot be serialized")

    def __copy__(self) -> NoReturn:
        """Refuse copying."""
        raise TypeError("CardPinCommand cannot be copied")

    def __deepcopy__(self, memo: object) -> NoReturn:
        """Refuse copying."""
        raise TypeError("CardPinCommand cannot be copied")

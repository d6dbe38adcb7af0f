"""The ``[pin]`` configuration section: which encoder and PIN pad serve each window.

Same style as :mod:`gateway.config` (``extra="forbid"``, frozen). Example::

    [pin]
    zone_pin_key = "zone-pin"  # key store id of the zone PIN key shared with the platform
    pad_timeout = 60.0  # seconds the holder has to enter a PIN

    [[pin.windows]]
    terminal = "teller-01"  # a [[terminals]] id
    encoder = "encoder-1"  # a [[devices.encoders]] id
    pinpad = "pinpad-1"  # the PIN pad at that window
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["PinSettings", "WindowSettings"]

_ID = r"^[A-Za-z0-9._-]{1,64}$"


class WindowSettings(BaseModel):
    """One window (or kiosk): its terminal, card encoder and PIN pad."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    terminal: str = Field(pattern=_ID)
    encoder: str = Field(pattern=_ID)
    pinpad: str = Field(pattern=_ID)


class PinSettings(BaseModel):
    """``[pin]``: PIN change, reset and unlock at the windows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Key store id of the zone PIN key (SM4) PIN blocks are sent to the key service under.
    zone_pin_key: str = Field(default="zone-pin", pattern=_ID)
    #: Seconds the holder has to enter a PIN on the pad.
    pad_timeout: float = Field(default=60.0, gt=0, le=600)
    windows: list[WindowSettings] = []

    @field_validator("windows")
    @classmethod
    def _one_window_per_terminal(cls, windows: list[WindowSettings]) -> list[WindowSettings]:
        terminals = [w.terminal for w in windows]
        if len(set(terminals)) != len(terminals):
            raise ValueError("each terminal has at most one window")
        return windows

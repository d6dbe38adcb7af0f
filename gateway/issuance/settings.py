"""``[production]``: the issuance stations and the job's rules."""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["LOW_STOCK", "ProductionConfig", "StationConfig"]


#: Blanks in a feeder at or below which it is reported low, unless configured.
LOW_STOCK: Final = 20


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StationConfig(_Section):
    """One issuance station: a printer of ``[devices]`` with the encoder at its contacts."""

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    #: The printer's ``[devices]`` id.
    printer: str
    #: The chip encoder's ``[devices]`` id (its reader sits at the printer's contact station).
    encoder: str | None = None
    #: The stock ledger's name for the printer's feeder (default: the station name).
    feeder: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")


class ProductionConfig(_Section):
    """Instant issuance at the window (needs ``[devices]`` and ``[upstream]`` with a bank)."""

    stations: tuple[StationConfig, ...] = Field(min_length=1)
    #: Authenticate-and-write attempts per card before it is spoiled.
    chip_write_attempts: int = Field(default=3, ge=1, le=10)
    #: Blanks one job may use before it fails.
    cards_per_job: int = Field(default=3, ge=1, le=10)
    #: ``teller``: each made card waits for the teller's verdict; ``automatic``: pass
    #: at once (unattended test benches and the demo only).
    quality_check: Literal["teller", "automatic"] = "teller"
    #: A feeder at or below this many blanks is reported low (telemetry, ops page).
    low_stock: int = Field(default=LOW_STOCK, ge=0, le=10_000)
    #: Hours between automatic stock reconciliations (also one at start).
    reconcile_hours: float = Field(default=24.0, gt=0, le=24 * 7)
    #: A CJK font for names on the card face (e.g. Noto Sans CJK from fonts-noto-cjk).
    font: Path | None = None
    #: Where card faces are drawn: ``process`` (one process of their own, started on the
    #: first card; Pillow holds the GIL while drawing) or ``thread`` (the daemon's threads).
    render: Literal["process", "thread"] = "process"
    #: A window card whose job failed (devices, stock) is queued again by itself this
    #: many times, behind the window's jobs, and then waits for the pickup (001 §1.1.3:
    #: made within 24 hours of a device or network fault). 0: only the teller retries.
    requeue_attempts: int = Field(default=2, ge=0, le=10)
    #: Minutes between a failed job and its automatic retry (and between retry rounds).
    requeue_minutes: float = Field(default=10.0, gt=0, le=24 * 60)
    #: Retried platform and bank calls: first and largest spacing, seconds.
    upstream_backoff_initial: float = Field(default=1.0, gt=0, le=600)
    upstream_backoff_max: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("stations")
    @classmethod
    def _unique_stations(cls, stations: tuple[StationConfig, ...]) -> tuple[StationConfig, ...]:
        names = [s.name for s in stations]
        if len(set(names)) != len(names):
            raise ValueError("station names must be unique")
        return stations

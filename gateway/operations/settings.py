"""``[business]``: the rules the province sets (fees, time limits, calendar, approvals)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BusinessConfig"]


class BusinessConfig(BaseModel):
    """Rules the province sets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: 工本费 for reissue, replacement and renewal, in yuan.
    reissue_fee_yuan: int = Field(default=20, ge=0, le=1000)
    #: Online applications: working days (DB 6523/T 372-2023 §6.3.1: 30 to 40).
    online_apply_workdays: int = Field(default=30, ge=1, le=120)
    #: Extra holidays and adjusted working days (TOML with `holidays`/`workdays` lists).
    calendar_file: Path | None = None
    #: Hours an Idempotency-Key (and its stored answer) is kept.
    idempotency_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    #: Minutes a supervisor's approval stays usable.
    approval_minutes: float = Field(default=15.0, gt=0, le=24 * 60)

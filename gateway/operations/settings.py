"""``[business]``: the rules the province sets (fees, time limits, calendar, approvals)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BusinessConfig", "FeeRule"]


class FeeRule(BaseModel):
    """The fee for a region and a category of person (``[[business.fee_rules]]``).

    The first rule whose ``region`` begins the branch's region code and whose
    category fits the holder sets the fee; ``yuan = 0`` waives it by policy
    (000 费用问题: 部分地区已减免).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A region code or its first digits (``"65"`` a province, ``"6523"`` a prefecture).
    region: str = Field(default="", pattern=r"^[0-9]{0,6}$")
    #: ``minor`` (under 18), ``senior`` (60 and over) or ``any``.
    category: Literal["any", "minor", "senior"] = "any"
    yuan: int = Field(ge=0, le=1000)


class BusinessConfig(BaseModel):
    """Rules the province sets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: 工本费 for reissue, replacement and renewal, in yuan (where no rule says otherwise).
    reissue_fee_yuan: int = Field(default=20, ge=0, le=1000)
    #: Fees by region and category of person, first match wins.
    fee_rules: tuple[FeeRule, ...] = ()
    #: Online applications: working days (DB 6523/T 372-2023 §6.3.1: 30 to 40).
    online_apply_workdays: int = Field(default=30, ge=1, le=120)
    #: Extra holidays and adjusted working days (TOML with `holidays`/`workdays` lists).
    calendar_file: Path | None = None
    #: Hours an Idempotency-Key (and its stored answer) is kept.
    idempotency_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    #: Minutes a supervisor's approval stays usable.
    approval_minutes: float = Field(default=15.0, gt=0, le=24 * 60)

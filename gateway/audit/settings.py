"""``[audit]``: how often the audit chain is signed and sent off the box."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AuditConfig"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuditConfig(_Section):
    """``[audit]``: how often the audit chain is signed and sent to the central monitor."""

    #: Seconds per checkpoint period; each finished period's end is signed (and, with
    #: ``[devices.broker]``, sent to the monitor). Periods are aligned to UTC multiples.
    checkpoint_period: int = Field(default=3600, ge=60, le=86400)

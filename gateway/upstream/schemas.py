"""The upstream endpoints' bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

__all__ = ["DeadLetterOut"]


class DeadLetterOut(BaseModel):
    """An upstream message the relay gave up on (no payload: it holds personal data)."""

    message_id: str
    target: str
    operation: str
    card_key: str
    attempts: int
    created_at: datetime
    expires_at: datetime
    last_error: str | None

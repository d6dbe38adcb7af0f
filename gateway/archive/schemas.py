"""The archive endpoint's bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ArchiveIn", "ArchiveOut", "ArchiveWaiverIn", "ArchiveWaiverOut"]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class ArchiveIn(BaseModel):
    """An image to archive with an application (credential, scene or signature)."""

    model_config = _STRICT

    kind: Literal["credential-image", "scene-image", "signature"]
    content_type: Literal["image/jpeg", "image/png", "application/pdf"]
    data: str = Field(min_length=4, max_length=7_000_000, description="The file, base64")


class ArchiveOut(BaseModel):
    """An archived file, as stored."""

    sha256: str
    size: int
    kind: str
    stored_at: datetime


class ArchiveWaiverIn(BaseModel):
    """A supervisor waives the images an application still lacks."""

    model_config = _STRICT

    reason: str = Field(min_length=2, max_length=256)


class ArchiveWaiverOut(BaseModel):
    """The application's archive after the waiver."""

    receipt_number: str
    archive_status: str
    reason: str
    waived_by: str

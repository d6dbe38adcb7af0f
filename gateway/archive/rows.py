"""Archived images of window operations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.runtime.rows import Base, UTCDateTime


class ArchiveFileRow(Base):
    """One archived image of a window operation (credential, scene or signature).

    The bytes live in ``<data_dir>/archive`` under their SHA-256 (content
    addressed: stored once, verifiable by name); the row ties them to the
    application and the month they are exported with.
    """

    __tablename__ = "archive_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(64))
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

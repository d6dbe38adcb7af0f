"""The archive of window operations: images stored by content, exported monthly.

Every window operation keeps the credential images, the scene image and the
applicant's signature (seed 001; DB 6523/T 372-2023 §6.4: collected monthly by
the archive post). Images are stored once under their SHA-256
(``<data_dir>/archive/ab/cd/<sha256>``, written to a temporary file, fsync'ed,
then renamed), with a database row per image and application.

``branchd archive export 2026-11`` writes one ZIP file::

    index.csv     receipt_number, operation, kind, sha256, size, content_type,
                  stored_at, member
    files/<sha256>
    SHA256SUMS    "<sha256>  <member>" for every member but itself

``branchd archive verify FILE`` recomputes every checksum and compares it with
both the index and SHA256SUMS; the first difference is reported by name.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Final

from sqlalchemy import select

from gateway.archive.rows import ArchiveFileRow
from gateway.operations.catalogue import CATALOGUE, ArchiveKind, Operation
from gateway.operations.rows import ApplicationRow
from gateway.runtime.business_day import BUSINESS_TZ

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.clock import Clock

__all__ = [
    "ApplicationNotFoundError",
    "ArchiveError",
    "ArchiveKind",
    "ArchiveStore",
    "VerifyResult",
    "export_month",
    "verify_export",
]

MAX_IMAGE_BYTES: Final = 5 * 1024 * 1024
CONTENT_TYPES: Final = frozenset({"image/jpeg", "image/png", "application/pdf"})
_OPERATIONS: Final = frozenset(o.value for o in Operation)
INDEX_FIELDS: Final = (
    "receipt_number", "operation", "kind", "sha256", "size", "content_type", "stored_at", "member",
)  # fmt: skip


class ArchiveError(Exception):
    """An archive operation or file is not valid; ``member`` names the bad entry."""

    def __init__(self, message: str, member: str | None = None) -> None:
        """Keep which member (if any) is concerned."""
        super().__init__(message)
        self.member = member


class ApplicationNotFoundError(ArchiveError):
    """No application has the receipt number asked for."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What ``verify_export`` checked."""

    files: int
    month: str


class ArchiveStore:
    """Stores images by content and records them against applications."""

    def __init__(
        self, root: Path, sessions: async_sessionmaker[AsyncSession], clock: Clock
    ) -> None:
        """Keep files under ``root``."""
        self._root = root
        self._sessions = sessions
        self._clock = clock

    def path_of(self, sha256: str) -> Path:
        """Where the file with this digest lives."""
        return self._root / sha256[:2] / sha256[2:4] / sha256

    def _write(self, data: bytes, sha256: str) -> None:
        path = self.path_of(sha256)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{sha256}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)

    async def add(
        self, application: ApplicationRow, kind: ArchiveKind, content_type: str, data: bytes
    ) -> ArchiveFileRow:
        """Store ``data`` and record it for ``application`` (file first, then the row)."""
        if content_type not in CONTENT_TYPES:
            raise ArchiveError(f"content type {content_type!r} not archived")
        if not data or len(data) > MAX_IMAGE_BYTES:
            raise ArchiveError("an archived file must be 1 byte to 5 MB")
        sha256 = hashlib.sha256(data).hexdigest()
        # The file is durable before the row that points to it is committed.
        await asyncio.to_thread(self._write, data, sha256)
        row = ArchiveFileRow(
            application_id=application.id, kind=kind.value, sha256=sha256, size=len(data),
            content_type=content_type, stored_at=self._clock.now(),
        )  # fmt: skip
        async with self._sessions.begin() as session:
            session.add(row)
            await session.flush()
            await _judge(session, application.id)
        return row

    async def waive(self, receipt: str, reason: str, supervisor: str) -> ApplicationRow:
        """A supervisor waives the images an application still lacks (with the reason).

        Raises:
            ArchiveError: no such application, or its archive is not incomplete.
        """
        async with self._sessions.begin() as session:
            held = await session.scalar(
                select(ApplicationRow)
                .where(ApplicationRow.receipt_number == receipt)
                .with_for_update()
            )
            if held is None:
                raise ApplicationNotFoundError("no application with this receipt number")
            if held.archive_status != "incomplete":
                raise ArchiveError(f"the archive is {held.archive_status}, not incomplete")
            held.archive_status = "waived"
            held.archive_waiver, held.archive_waived_by = reason, supervisor
            return held


async def _judge(session: AsyncSession, application_id: int) -> None:
    """Mark the application ``complete`` once every image its operation keeps is archived.

    A signed printed form archived as the signature stands for the pad's (001).
    """
    held = await session.scalar(
        select(ApplicationRow).where(ApplicationRow.id == application_id).with_for_update()
    )
    if held is None or held.archive_status != "incomplete":
        return
    kinds = set(
        await session.scalars(
            select(ArchiveFileRow.kind).where(ArchiveFileRow.application_id == application_id)
        )
    )
    spec = CATALOGUE.get(Operation(held.operation)) if held.operation in _OPERATIONS else None
    required = {kind.value for kind in spec.archive} if spec is not None else set()
    if required <= kinds:
        held.archive_status = "complete"


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """UTC start and end of a business month written ``YYYY-MM`` (Beijing time)."""
    try:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
    except ValueError:
        raise ArchiveError(f"month {month!r}: expected YYYY-MM") from None
    following = date(year + (number == 12), number % 12 + 1, 1)  # noqa: PLR2004 - December
    start = datetime.combine(first, time(), tzinfo=BUSINESS_TZ)
    end = datetime.combine(following, time(), tzinfo=BUSINESS_TZ)
    return start, end


async def export_month(
    store: ArchiveStore, sessions: async_sessionmaker[AsyncSession], month: str, output: Path
) -> int:
    """Write the month's archive to ``output`` (one ZIP file); return the number of files."""
    start, end = month_bounds(month)
    async with sessions() as session:
        lacking = list(
            await session.scalars(
                select(ApplicationRow.receipt_number)
                .where(
                    ApplicationRow.archive_status == "incomplete",
                    ApplicationRow.accepted_at >= start,
                    ApplicationRow.accepted_at < end,
                )
                .order_by(ApplicationRow.id)
            )
        )
        if lacking:
            # 002 §6.4: the month's material is collected whole, or not yet.
            shown = ", ".join(lacking[:10]) + (" ..." if len(lacking) > 10 else "")  # noqa: PLR2004
            raise ArchiveError(
                f"{len(lacking)} application(s) of {month} still lack their images "
                f"(attach them, or a supervisor waives them with a reason): {shown}"
            )
        rows = (
            await session.execute(
                select(ArchiveFileRow, ApplicationRow)
                .join(ApplicationRow, ApplicationRow.id == ArchiveFileRow.application_id)
                .where(ArchiveFileRow.stored_at >= start, ArchiveFileRow.stored_at < end)
                .order_by(ArchiveFileRow.id)
            )
        ).all()
    pairs = [(file, application) for file, application in rows]
    return await asyncio.to_thread(_write_export, store, pairs, output)


def _write_export(
    store: ArchiveStore, rows: list[tuple[ArchiveFileRow, ApplicationRow]], output: Path
) -> int:
    index = io.StringIO()
    writer = csv.writer(index, lineterminator="\n")
    writer.writerow(INDEX_FIELDS)
    sums: list[str] = []
    tmp = output.with_name(output.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        written: set[str] = set()
        for file, application in rows:
            member = f"files/{file.sha256}"
            data = store.path_of(file.sha256).read_bytes()
            if hashlib.sha256(data).hexdigest() != file.sha256:
                raise ArchiveError(f"stored file {file.sha256} is damaged", member)
            if member not in written:
                archive.writestr(member, data)
                sums.append(f"{file.sha256}  {member}")
                written.add(member)
            writer.writerow(
                (application.receipt_number, application.operation, file.kind, file.sha256,
                 file.size, file.content_type, file.stored_at.isoformat(), member)
            )  # fmt: skip
        index_bytes = index.getvalue().encode()
        archive.writestr("index.csv", index_bytes)
        sums.append(f"{hashlib.sha256(index_bytes).hexdigest()}  index.csv")
        archive.writestr("SHA256SUMS", "\n".join(sums) + "\n")
    tmp.replace(output)
    return len(rows)


def verify_export(path: Path) -> VerifyResult:
    """Check every checksum of an exported archive; raise ArchiveError at the first mismatch."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"{path} is not an archive export: {exc}") from None
    with archive:
        names = set(archive.namelist())
        for required in ("index.csv", "SHA256SUMS"):
            if required not in names:
                raise ArchiveError(f"{required} is missing", required)
        sums = _check_sums(archive, names)
        rows = list(csv.DictReader(io.StringIO(archive.read("index.csv").decode())))
        _check_index(rows, names, sums)
    month = rows[0]["stored_at"][:7] if rows else "(empty)"
    return VerifyResult(files=len(rows), month=month)


def _check_sums(archive: zipfile.ZipFile, names: set[str]) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in archive.read("SHA256SUMS").decode().splitlines():
        digest, _, member = line.partition("  ")
        sums[member] = digest
    for member in sorted(names - {"SHA256SUMS"}):
        if sums.get(member) != hashlib.sha256(archive.read(member)).hexdigest():
            raise ArchiveError(f"{member}: checksum does not match SHA256SUMS", member)
    return sums


def _check_index(rows: list[dict[str, str]], names: set[str], sums: dict[str, str]) -> None:
    for row in rows:
        member = row["member"]
        if member not in names:
            raise ArchiveError(f"{member} listed in index.csv is missing", member)
        if row["sha256"] != sums.get(member):
            raise ArchiveError(f"{member}: index.csv checksum differs", member)
    stray = names - {"index.csv", "SHA256SUMS"} - {row["member"] for row in rows}
    if stray:
        first = min(stray)
        raise ArchiveError(f"{first} is not listed in index.csv", first)

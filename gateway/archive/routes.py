"""The archive's part of the teller API.

``POST /v1/applications/{receipt}/archive`` stores an image of an application
(credential, scene or signature) with it; once every image the operation keeps
is there, the application's ``archive_status`` is ``complete``.
``POST /v1/applications/{receipt}/archive-waiver`` lets a supervisor waive the
images it still lacks, with a reason.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from sqlalchemy import select

from gateway.archive.schemas import ArchiveIn, ArchiveOut, ArchiveWaiverIn, ArchiveWaiverOut
from gateway.archive.store import ApplicationNotFoundError, ArchiveError, ArchiveKind
from gateway.operations.routes import receipt_of_path
from gateway.operations.rows import ApplicationRow
from gateway.runtime.http.auth import Role, require_role
from gateway.runtime.http.kit import (
    INVALID_REQUEST,
    MAX_ARCHIVE_BODY,
    ApiSection,
    OpenApiKit,
    TellerContext,
    json_response,
    parse_body,
    post_once,
)
from gateway.runtime.problems import NOT_FOUND, ProblemError, register

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from gateway.archive.store import ArchiveStore
    from gateway.runtime.http.auth import Terminal

__all__ = ["ARCHIVE", "ARCHIVE_NOT_INCOMPLETE", "SECTION", "ArchiveContext"]

ARCHIVE_NOT_INCOMPLETE: Final = register(
    "archive-not-incomplete",
    409,
    "The application's archive is not incomplete; there is nothing to waive",
    "该业务的归档影像不缺失，无需豁免",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveContext(TellerContext):
    """What the archive's handler needs (built by the daemon)."""

    sessions: async_sessionmaker[AsyncSession]
    archive: ArchiveStore


ARCHIVE: Final = web.AppKey("archive", ArchiveContext)


@post_once(ARCHIVE, limit=MAX_ARCHIVE_BODY, checks=(receipt_of_path,))
async def add_archive_file(
    request: web.Request, api: ArchiveContext, terminal: Terminal, body: bytes
) -> web.Response:
    """Archive a credential image, the scene image or the signature of an application."""
    require_role(terminal, {Role.TELLER, Role.SUPERVISOR, Role.ARCHIVE}, "archive images")
    receipt = receipt_of_path(request)
    parsed = parse_body(ArchiveIn, body)
    try:
        data = base64.b64decode(parsed.data, validate=True)
    except (binascii.Error, ValueError):
        raise ProblemError(
            INVALID_REQUEST, "data is not base64", "data 不是有效的 base64 编码。"
        ) from None
    async with api.sessions() as session:
        application = (
            await session.scalars(
                select(ApplicationRow).where(ApplicationRow.receipt_number == receipt)
            )
        ).first()
    if application is None:
        raise ProblemError(NOT_FOUND, "No application with this receipt number.", "无此受理编号。")
    try:
        row = await api.archive.add(
            application, ArchiveKind(parsed.kind), parsed.content_type, data
        )
    except ArchiveError as exc:
        raise ProblemError(INVALID_REQUEST, str(exc), "归档文件不符合要求。") from None
    out = ArchiveOut(sha256=row.sha256, size=row.size, kind=row.kind, stored_at=row.stored_at)
    return json_response(out, status=201)


@post_once(ARCHIVE, checks=(receipt_of_path,))
async def waive_archive(
    request: web.Request, api: ArchiveContext, terminal: Terminal, body: bytes
) -> web.Response:
    """A supervisor waives the images an application still lacks (the reason is kept)."""
    receipt = receipt_of_path(request)
    require_role(terminal, {Role.SUPERVISOR}, "waive archive images")
    parsed = parse_body(ArchiveWaiverIn, body)
    try:
        held = await api.archive.waive(receipt, parsed.reason, terminal.id)
    except ApplicationNotFoundError as exc:
        raise ProblemError(NOT_FOUND, str(exc), "无此受理编号。") from None
    except ArchiveError as exc:
        raise ProblemError(
            ARCHIVE_NOT_INCOMPLETE, str(exc), "该业务的归档影像不缺失，无需豁免。"
        ) from None
    # The waiver, its reason and who gave it are on the application row; the
    # audit chain records it too.
    await api.audit_reads.put(terminal.id, "archive.waive", f"receipt:{receipt}")
    out = ArchiveWaiverOut(
        receipt_number=held.receipt_number, archive_status=held.archive_status,
        reason=parsed.reason, waived_by=terminal.id,
    )  # fmt: skip
    return json_response(out)


def add_routes(app: web.Application) -> None:
    """Mount the archive's handlers (the context is under :data:`ARCHIVE`)."""
    app.router.add_post("/v1/applications/{receipt}/archive", add_archive_file)
    app.router.add_post("/v1/applications/{receipt}/archive-waiver", waive_archive)


def _paths(kit: OpenApiKit) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    paths["/v1/applications/{receipt}/archive"] = {
        "post": {
            "operationId": "archiveFile",
            "summary": "归档影像 / Archive an image of the application",
            "parameters": [
                {"name": "receipt", "in": "path", "required": True, "schema": {"type": "string"}},
                kit.idempotency_header,
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": kit.ref("ArchiveIn")}},
            },
            "responses": {
                "201": {
                    "description": "Archived",
                    "content": {"application/json": {"schema": kit.ref("ArchiveOut")}},
                },
                **kit.errors,
            },
        }
    }
    paths["/v1/applications/{receipt}/archive-waiver"] = {
        "post": {
            "operationId": "waiveArchive",
            "summary": "影像豁免 / A supervisor waives the images an application lacks",
            "parameters": [
                {"name": "receipt", "in": "path", "required": True, "schema": {"type": "string"}},
                kit.idempotency_header,
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": kit.ref("ArchiveWaiverIn")}},
            },
            "responses": {
                "200": {
                    "description": "Waived",
                    "content": {"application/json": {"schema": kit.ref("ArchiveWaiverOut")}},
                },
                **kit.errors,
            },
        }
    }
    return paths


SECTION: Final = ApiSection(
    name="archive",
    models=(ArchiveIn, ArchiveOut, ArchiveWaiverIn, ArchiveWaiverOut),
    add_routes=add_routes,
    paths=_paths,
)

"""The batch API: import a card list, its problem report, submit, progress, take out, pickup.

========================================  ============================================
``POST /v1/batches``                      import (JSON: list and zip of files, base64)
``GET /v1/batches/{id}``                  progress: rows counted by status
``GET /v1/batches/{id}/rows``             rows (masked holder, status, problems)
``GET /v1/batches/{id}/report``           the problems as the xlsx the employer corrects
``POST /v1/batches/{id}/submit``          queue the valid rows for production
``POST /v1/batches/{id}/rows/{line}/to-single``  batch-to-single (``X-Approval-ID``)
``POST /v1/batches/{id}/pickup``          the handler takes the made cards
========================================  ============================================

The daemon builds the :class:`~gateway.batches.service.BatchService`
(:func:`gateway.assembly.build_batches`) and supervises its two tasks; this
module only puts it on the teller API.

The service refuses with a :class:`~gateway.batches.errors.BatchReason`; the
batch problems are registered here, beside :data:`PROBLEMS`, the one table that
answers each reason with its problem (the section's ``problems``). A handler
itself raises a problem only for what HTTP brought: a path id that cannot be a
batch, a bad line number, a body that is not what the model says.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from gateway.batches.cardlist import MAX_SCAN_BYTES
from gateway.batches.errors import BatchReason
from gateway.batches.schemas import (
    BatchImportIn,
    BatchOut,
    BatchPickupIn,
    BatchPickupOut,
    BatchRowOut,
    BatchRowsOut,
)
from gateway.operations.catalogue import Operation
from gateway.operations.routes import INCOMPLETE, reader_terminal
from gateway.operations.schemas import OperationRequest
from gateway.runtime.http.idempotency import request_digest
from gateway.runtime.http.kit import (
    APPROVAL_HEADER,
    ID_SCHEMA,
    INVALID_REQUEST,
    MAX_ARCHIVE_BODY,
    MAX_IMPORT_BODY,
    ApiSection,
    TellerContext,
    approval_header,
    bad_parameter,
    json_response,
    parse_body,
    path_id,
    post_once,
)
from gateway.runtime.problems import Problem, ProblemError, register

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from enum import StrEnum

    from gateway.batches.service import BatchService, Progress
    from gateway.runtime.http.auth import Terminal
    from gateway.runtime.http.kit import OpenApiKit

__all__ = [
    "BATCHES",
    "BATCH_FILE_INVALID",
    "BATCH_HOLDER_MISMATCH",
    "BATCH_NOT_FOUND",
    "BATCH_ROW_STATE",
    "BATCH_STATE",
    "PROBLEMS",
    "SECTION",
    "BatchesContext",
    "add_batch_routes",
]

#: The largest file a zip may hold: a scan (a photo is smaller still).
MAX_MEMBER_BYTES: Final = MAX_SCAN_BYTES

XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_LINE: Final = 2**31 - 1  # a row's line number is an INTEGER column
_LINE: Final = re.compile(r"[1-9][0-9]{0,9}")

BATCH_NOT_FOUND: Final = register("batch-not-found", 404, "Batch not found", "未找到该批次")
BATCH_FILE_INVALID: Final = register(
    "batch-file-invalid", 422, "The card list cannot be read", "制卡明细表无法读取或不是模板格式"
)
BATCH_STATE: Final = register(
    "batch-state", 409, "Not allowed in the batch's current state", "批次当前状态不允许此操作"
)
BATCH_ROW_STATE: Final = register(
    "batch-row-state",
    409,
    "Not allowed for this row of the batch now",
    "该批次明细当前状态不允许此操作",
)
BATCH_HOLDER_MISMATCH: Final = register(
    "batch-holder-mismatch",
    409,
    "The applicant is not the holder of this batch row",
    "申办人与该批次明细的持卡人不符",
)

#: The problem each refusal of the batch service is answered with (the section's table).
PROBLEMS: Final[Mapping[StrEnum, Problem]] = {
    BatchReason.NOT_FOUND: BATCH_NOT_FOUND,
    BatchReason.FILE_INVALID: BATCH_FILE_INVALID,
    BatchReason.STATE: BATCH_STATE,
    BatchReason.ROW_STATE: BATCH_ROW_STATE,
    BatchReason.HOLDER_MISMATCH: BATCH_HOLDER_MISMATCH,
    BatchReason.INCOMPLETE: INCOMPLETE,  # the operations' own problem: materials, listed
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchesContext(TellerContext):
    """What the batch handlers need (built by the daemon, which also runs the batches' tasks)."""

    batches: BatchService


BATCHES: Final = web.AppKey("batches", BatchesContext)


def add_batch_routes(app: web.Application) -> None:
    """Mount the batch API (the context is under :data:`BATCHES`)."""
    app.router.add_post("/v1/batches", import_batch)
    app.router.add_get("/v1/batches/{batch}", get_batch)
    app.router.add_get("/v1/batches/{batch}/rows", get_rows)
    app.router.add_get("/v1/batches/{batch}/report", get_report)
    app.router.add_post("/v1/batches/{batch}/submit", submit)
    app.router.add_post("/v1/batches/{batch}/rows/{line}/to-single", to_single)
    app.router.add_post("/v1/batches/{batch}/pickup", pickup)


def _batch_out(progress: Progress) -> BatchOut:
    batch = progress.batch
    return BatchOut(
        id=batch.id,
        receipt_number=progress.receipt_number,
        employer=batch.employer,
        handler=progress.handler_masked,
        priority=batch.priority,  # type: ignore[arg-type]
        status=batch.status,  # type: ignore[arg-type]
        deadline=progress.deadline,
        created_at=batch.created_at,
        submitted_at=batch.submitted_at,
        rows=batch.rows_total,
        counts=progress.counts,
        done=progress.done,
        total=progress.total,
    )


def _batch_id(request: web.Request) -> str:
    """The batch id of the path; ``batch-not-found`` when it cannot be one."""
    return path_id(request, "batch", ProblemError(BATCH_NOT_FOUND, "No such batch.", "无此批次。"))


def _line(request: web.Request) -> int:
    """The row's line number of the path (1 and up), or 400."""
    text = request.match_info["line"]
    if _LINE.fullmatch(text) is None or int(text) > MAX_LINE:
        raise bad_parameter(
            "line", "line must be a row's line number (1 and up).", "行号须为正整数。"
        )
    return int(text)


def _b64(text: str | None, what: str) -> bytes | None:
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProblemError(
            INVALID_REQUEST, f"{what} is not base64", f"{what} 不是有效的 base64 编码。"
        ) from None


def _zip_files(data: bytes | None) -> dict[str, Callable[[], bytes]]:
    """The zip's files by name, each read on demand and never beyond its limit.

    A member is refused by its declared size before anything is read, and again
    by its actual size while it is read (a forged header cannot make it larger:
    the reading stops at the limit), the problem naming the member.
    """
    if data is None:
        return {}
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ProblemError(
            INVALID_REQUEST, "files is not a zip file", "files 不是有效的 zip 文件。"
        ) from None
    for info in infos:
        if info.file_size > MAX_MEMBER_BYTES:
            raise _member_too_large(info.filename, info.file_size)

    def reader(info: zipfile.ZipInfo) -> Callable[[], bytes]:
        def read() -> bytes:
            try:
                with archive.open(info) as member:
                    found = member.read(MAX_MEMBER_BYTES + 1)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError):
                raise ProblemError(
                    INVALID_REQUEST,
                    f"files: {info.filename[:200]} is damaged (its size or checksum does not "
                    "match its header)",
                    f"files 中的 {info.filename[:200]} 已损坏（大小或校验和与文件头不符）。",
                    member=info.filename[:200],
                ) from None
            if len(found) > MAX_MEMBER_BYTES:
                raise _member_too_large(info.filename, len(found))
            return found

        return read

    return {PurePosixPath(info.filename).name: reader(info) for info in infos}


def _member_too_large(name: str, size: int) -> ProblemError:
    return ProblemError(
        INVALID_REQUEST,
        f"files: {name[:200]} is {size} bytes; a photo or scan is at most {MAX_MEMBER_BYTES}",
        f"files 中的 {name[:200]} 过大（{size} 字节），"
        f"照片或扫描件不超过 {MAX_MEMBER_BYTES} 字节。",
        member=name[:200],
        size=size,
    )


@post_once(BATCHES, limit=MAX_IMPORT_BODY)
async def import_batch(
    _request: web.Request, api: BatchesContext, terminal: Terminal, body: bytes
) -> web.Response:
    """Import a card list with its photos and scans; answer the summary (201)."""
    batches = api.batches
    parsed = parse_body(BatchImportIn, body)
    list_data = _b64(parsed.list_data, "list_data")
    assert list_data is not None  # noqa: S101 - required field
    summary = await batches.import_batch(
        operation=parsed.operation,
        employer=parsed.employer,
        handler=parsed.handler,
        materials=parsed.materials,
        priority=parsed.priority,
        list_name=parsed.list_name,
        list_data=list_data,
        files=_zip_files(_b64(parsed.files, "files")),
        terminal=terminal,
    )
    return json_response(_batch_out(await batches.progress(summary.id)), status=201)


async def get_batch(request: web.Request) -> web.Response:
    """The batch and its rows counted by status."""
    terminal = reader_terminal(request)
    batches = request.app[BATCHES].batches
    batch_id = _batch_id(request)
    await request.app[BATCHES].audit_reads.put(terminal.id, "query.batch", f"batch:{batch_id}")
    return json_response(_batch_out(await batches.progress(batch_id)))


async def get_rows(request: web.Request) -> web.Response:
    """Every row, in line order (masked holder, status, problems)."""
    terminal = reader_terminal(request)
    batch_id = _batch_id(request)
    await request.app[BATCHES].audit_reads.put(terminal.id, "query.batch-rows", f"batch:{batch_id}")
    import json  # noqa: PLC0415

    rows = await request.app[BATCHES].batches.rows(batch_id)
    items = [
        BatchRowOut(
            line=row.line,
            number=row.number,
            status=row.status,
            holder=row.id_masked,
            problems=[
                {"column": c, "code": code, "title_zh": zh, "title_en": en}
                for c, code, zh, en in json.loads(row.problems or "[]")
            ],
            failure=row.failure,
            single_receipt=row.single_receipt,
            picked_up_at=row.picked_up_at,
            enable_due_at=row.enable_due_at,
            enabled_at=row.enabled_at,
        )
        for row in rows
    ]
    return json_response(BatchRowsOut(items=items))


async def get_report(request: web.Request) -> web.Response:
    """The problem report (xlsx) to give back to the employer."""
    reader_terminal(request)
    batch_id = _batch_id(request)
    data = await request.app[BATCHES].batches.report(batch_id)
    return web.Response(
        body=data,
        content_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}-problems.xlsx"'},
    )


@post_once(BATCHES, checks=(_batch_id,))
async def submit(
    request: web.Request, api: BatchesContext, terminal: Terminal, body: bytes
) -> web.Response:
    """Queue the batch's valid rows for production."""
    del body  # nothing is sent: the path names the batch
    batch_id = _batch_id(request)
    progress = await api.batches.submit(batch_id, terminal)
    return json_response(_batch_out(progress))


@post_once(BATCHES, checks=(_batch_id, _line, approval_header))
async def to_single(
    request: web.Request, api: BatchesContext, terminal: Terminal, body: bytes
) -> web.Response:
    """Batch-to-single: the holder in person, with a supervisor's approval of this request."""
    batch_id = _batch_id(request)
    line = _line(request)
    approval_id = approval_header(request)
    parsed = parse_body(OperationRequest, body)
    digest = request_digest(
        "APPROVE", Operation.BATCH_TO_SINGLE.value, parsed.model_dump_json().encode()
    )
    result = await api.batches.to_single(
        batch_id,
        line,
        parsed,
        terminal,
        digest=digest,
        approval_id=approval_id,
    )
    return json_response(result)


@post_once(BATCHES, limit=MAX_ARCHIVE_BODY, checks=(_batch_id,))
async def pickup(
    request: web.Request, api: BatchesContext, terminal: Terminal, body: bytes
) -> web.Response:
    """The employer's handler takes the made cards; enabling follows 96 h later."""
    batch_id = _batch_id(request)
    parsed = parse_body(BatchPickupIn, body)
    done = await api.batches.pickup(batch_id, parsed, terminal)
    out = BatchPickupOut(
        receipt_number=done.receipt_number,
        lines=done.lines,
        enable_due_at=done.enable_due_at,
        changed_handler=done.changed_handler,
    )
    return json_response(out, status=201)


def batch_paths(kit: OpenApiKit) -> dict[str, Any]:
    """The batch API's part of the OpenAPI document."""
    ref, errors, idempotency = kit.ref, kit.errors, kit.idempotency_header
    batch = {"name": "batch", "in": "path", "required": True, "schema": ID_SCHEMA}
    line = {
        "name": "line",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LINE},
    }

    def answer(code: str, schema: dict[str, Any], what: str) -> dict[str, Any]:
        return {code: {"description": what, "content": {"application/json": {"schema": schema}}}}

    def body(name: str) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": ref(name)}}}

    return {
        "/v1/batches": {
            "post": {
                "operationId": "importBatch",
                "summary": "批量报盘导入 / Import an employer's card list with photos and scans",
                "parameters": [idempotency],
                "requestBody": body("BatchImportIn"),
                "responses": {**answer("201", ref("BatchOut"), "Imported"), **errors},
            }
        },
        "/v1/batches/{batch}": {
            "get": {
                "operationId": "getBatch",
                "summary": "批次进度 / Batch progress",
                "parameters": [batch],
                "responses": {**answer("200", ref("BatchOut"), "Found"), **errors},
            }
        },
        "/v1/batches/{batch}/rows": {
            "get": {
                "operationId": "getBatchRows",
                "summary": "批次明细 / Rows of a batch",
                "parameters": [batch],
                "responses": {**answer("200", ref("BatchRowsOut"), "Found"), **errors},
            }
        },
        "/v1/batches/{batch}/report": {
            "get": {
                "operationId": "getBatchReport",
                "summary": "问题清单 / The rows' problems as xlsx",
                "parameters": [batch],
                "responses": {
                    "200": {
                        "description": "The report",
                        "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **errors,
                },
            }
        },
        "/v1/batches/{batch}/submit": {
            "post": {
                "operationId": "submitBatch",
                "summary": "提交制卡 / Queue the valid rows for production",
                "parameters": [batch, idempotency],
                "responses": {**answer("200", ref("BatchOut"), "Submitted"), **errors},
            }
        },
        "/v1/batches/{batch}/rows/{line}/to-single": {
            "post": {
                "operationId": "batchToSingle",
                "summary": "批量转零星 / Take one card out of the batch, made at once",
                "parameters": [
                    batch,
                    line,
                    idempotency,
                    APPROVAL_HEADER,
                ],
                "requestBody": body("OperationRequest"),
                "responses": {**answer("200", ref("OperationResult"), "Accepted"), **errors},
            }
        },
        "/v1/batches/{batch}/pickup": {
            "post": {
                "operationId": "pickupBatch",
                "summary": "单位领卡 / The employer's handler picks up the made cards",
                "parameters": [batch, idempotency],
                "requestBody": body("BatchPickupIn"),
                "responses": {**answer("201", ref("BatchPickupOut"), "Handed over"), **errors},
            }
        },
    }


SECTION: Final = ApiSection(
    name="batches",
    models=(BatchImportIn, BatchOut, BatchRowsOut, BatchPickupIn, BatchPickupOut),
    add_routes=add_batch_routes,
    paths=batch_paths,
    problems=PROBLEMS,
)

"""The batch API through HTTP on a running daemon (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import io
import struct
import zipfile
from datetime import date
from typing import TYPE_CHECKING

from openpyxl import load_workbook

from gateway.operations.receipts import make_receipt_number
from gateway.runtime.http.kit import MAX_ARCHIVE_BODY, MAX_BODY, MAX_IMPORT_BODY
from tests.gateway.batches.conftest import HANDLER, SCAN, card_list, files_zip, id_number, photo
from tests.gateway.branch import branch  # noqa: F401 - the fixture
from tests.gateway.builders import TOKENS

if TYPE_CHECKING:
    from tests.gateway.branch import Branch

MATERIALS = ["handler-id-card", "batch-file"]


def import_body(rows: list[list[str]], **changes: object) -> dict[str, object]:
    """An import request with the rows' files zipped."""
    files = {}
    for row in rows:
        files[row[5]] = photo()
        files[row[6]] = SCAN
    body: dict[str, object] = {
        "employer": "昌吉市某某有限公司",
        "handler": HANDLER,
        "materials": MATERIALS,
        "priority": "urgent",
        "list_name": "list.csv",
        "list_data": base64.b64encode(card_list(rows)).decode(),
        "files": base64.b64encode(files_zip(files)).decode(),
    }
    body.update(changes)
    return body


def row(n: int, ethnicity: str = "01") -> list[str]:
    """A row numbered ``n``."""
    return [str(n), f"职工{n}", id_number(n), "", "", f"p{n}.jpg", f"s{n}.pdf", ethnicity]


async def test_import_report_submit_progress_over_http(branch: Branch) -> None:  # noqa: F811
    """Import answers the progress; the report is xlsx; submit queues; pickup waits for cards."""
    status, batch, _ = await branch.call(
        "POST", "/v1/batches", body=import_body([row(1), row(2, ethnicity="")])
    )
    assert status == 201, batch
    assert batch["counts"] == {"ready": 1, "invalid": 1}
    assert batch["handler"].startswith("110105")
    assert "198001010020" not in batch["handler"]
    async with branch.http.get(
        branch.daemon.urls[0] + f"/v1/batches/{batch['id']}/report",
        headers={"Authorization": f"Bearer {TOKENS['teller']}"},
    ) as response:
        assert response.status == 200
        report = await response.read()
    sheet = load_workbook(io.BytesIO(report)).worksheets[0]
    assert [c.value for c in sheet[2]][3] == "missing:ethnicity"
    status, submitted, _ = await branch.call("POST", f"/v1/batches/{batch['id']}/submit")
    assert status == 200
    assert submitted["counts"] == {"queued": 1, "invalid": 1}
    status, rows, _ = await branch.call("GET", f"/v1/batches/{batch['id']}/rows")
    assert [r["status"] for r in rows["items"]] == ["queued", "invalid"]
    status, problem, reply = await branch.call(
        "POST",
        f"/v1/batches/{batch['id']}/pickup",
        body={"handler": HANDLER, "materials": ["handler-id-card"]},
    )
    assert status == 409
    assert problem["code"] == "batch-row-state"
    assert reply.content_type == "application/problem+json"


async def test_refusals_are_problem_documents(branch: Branch) -> None:  # noqa: F811
    """Missing materials list everything; unknown batches are 404; kiosks may not import."""
    status, problem, _ = await branch.call(
        "POST", "/v1/batches", body=import_body([row(1)], materials=[])
    )
    assert status == 422
    assert len(problem["missing"]) == 2
    status, problem, _ = await branch.call("GET", "/v1/batches/nope")
    assert (status, problem["code"]) == (404, "batch-not-found")
    status, problem, _ = await branch.call(
        "POST", "/v1/batches", role="kiosk", body=import_body([row(1)])
    )
    assert status == 403
    status, document, _ = await branch.call("GET", "/openapi.json")
    assert "/v1/batches/{batch}/rows/{line}/to-single" in document["paths"]
    assert "BatchImportIn" in document["components"]["schemas"]


def _forged(size_field: int, *, central_only: bool) -> bytes:
    """A zip of the rows' files whose p1.jpg header declares ``size_field`` bytes."""
    files = {"p1.jpg": photo(), "s1.pdf": SCAN}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    raw = bytearray(buffer.getvalue())
    declared = struct.pack("<I", size_field)
    central = raw.find(b"PK\x01\x02")  # the first central directory entry: p1.jpg
    raw[central + 24 : central + 28] = declared  # uncompressed size
    if not central_only:
        raw[central + 20 : central + 24] = declared  # compressed size too
    return bytes(raw)


async def test_a_zip_member_is_refused_by_its_size_before_it_is_read(branch: Branch) -> None:  # noqa: F811
    """Declared 2 GB: refused by the header; declared small, actually larger: read stops."""
    for size_field, central_only in ((2**31, False), (1, True)):
        files = base64.b64encode(_forged(size_field, central_only=central_only)).decode()
        status, problem, _ = await branch.call(
            "POST", "/v1/batches", body=import_body([row(1)], files=files)
        )
        assert (status, problem["code"]) == (422, "invalid-request"), problem
        assert problem["member"] == "p1.jpg", problem


async def test_each_route_takes_a_body_up_to_its_own_limit(branch: Branch) -> None:  # noqa: F811
    """At the limit the body is read (and judged as JSON); one byte more is 413."""
    headers = {
        "Authorization": f"Bearer {TOKENS['teller']}",
        "Content-Type": "application/json",
    }
    for path, limit in (
        ("/v1/operations/apply", MAX_BODY),
        (
            f"/v1/applications/{make_receipt_number('652300', date(2026, 11, 23), 1)}/archive",
            MAX_ARCHIVE_BODY,
        ),
        ("/v1/batches", MAX_IMPORT_BODY),
    ):
        for size, expected in ((limit, "read"), (limit + 1, 413)):
            body = b" " * (size - 2) + b"{}"  # whitespace then an empty object
            async with branch.http.post(
                branch.daemon.urls[0] + path, data=io.BytesIO(body),
                headers={**headers, "Idempotency-Key": f"limit-{path}-{size}"},
            ) as response:  # fmt: skip
                answer = await response.json(content_type=None)
            if expected == 413:
                assert (response.status, answer["code"]) == (413, "payload-too-large"), path
            else:
                assert response.status != 413, (path, answer)

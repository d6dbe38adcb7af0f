"""The batch API through HTTP on a running daemon (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import io

from openpyxl import load_workbook

from tests.gateway.batches.conftest import HANDLER, SCAN, card_list, files_zip, id_number, photo
from tests.gateway.branch import TOKENS, Branch, branch  # noqa: F401 - the fixture

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

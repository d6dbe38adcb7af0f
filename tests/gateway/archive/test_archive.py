"""The archive: images stored by content through the API, exported monthly, verified."""

import base64
import zipfile
from pathlib import Path

import pytest

from gateway.archive.store import ArchiveError, export_month, verify_export
from gateway.cli.main import main
from tests.gateway.branch import Branch, apply_body

pytestmark = pytest.mark.integration

SIGNATURE = b"\x89PNG\r\n\x1a\n" + b"signature-pad-image" * 10


async def archived_branch(branch: Branch) -> str:
    """Accept an application and archive its three images; return the receipt number."""
    status, result, _ = await branch.call("POST", "/v1/operations/apply", body=apply_body())
    assert status == 200
    receipt = str(result["receipt_number"])
    for kind, content_type, data in (
        ("credential-image", "image/jpeg", b"\xff\xd8id-card-front" * 20),
        ("scene-image", "image/jpeg", b"\xff\xd8counter-scene" * 20),
        ("signature", "image/png", SIGNATURE),
    ):
        status, stored, _ = await branch.call(
            "POST",
            f"/v1/applications/{receipt}/archive",
            body={
                "kind": kind,
                "content_type": content_type,
                "data": base64.b64encode(data).decode(),
            },
        )
        assert status == 201, stored
        assert stored["size"] == len(data)
    return receipt


async def test_export_and_verify_a_month(branch: Branch, tmp_path: Path) -> None:
    """The month's export holds every image with index.csv and SHA256SUMS, and verifies."""
    receipt = await archived_branch(branch)
    api = branch.daemon.teller.archive if branch.daemon.teller else None
    assert api is not None
    output = tmp_path / "archive-2026-11.zip"
    assert await export_month(api.archive, api.sessions, "2026-11", output) == 3
    with zipfile.ZipFile(output) as archive:
        index = archive.read("index.csv").decode()
        assert index.count(receipt) == 3
        assert "SHA256SUMS" in archive.namelist()
    result = verify_export(output)
    assert (result.files, result.month) == (3, "2026-11")
    assert main(["archive", "verify", str(output)]) == 0
    empty = tmp_path / "archive-2026-10.zip"
    assert await export_month(api.archive, api.sessions, "2026-10", empty) == 0


async def test_tampered_export_names_the_member(branch: Branch, tmp_path: Path) -> None:
    """Changing one file inside the export makes verify fail and name that file."""
    await archived_branch(branch)
    api = branch.daemon.teller.archive if branch.daemon.teller else None
    assert api is not None
    output = tmp_path / "export.zip"
    await export_month(api.archive, api.sessions, "2026-11", output)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(output) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.startswith("files/") and data == SIGNATURE:
                data = data.replace(b"signature", b"SIGNATURE")
                bad = item.filename
            target.writestr(item, data)
    with pytest.raises(ArchiveError) as info:
        verify_export(tampered)
    assert info.value.member == bad
    assert main(["archive", "verify", str(tampered)]) == 1


async def test_archive_refusals(branch: Branch) -> None:
    """Unknown receipts, bad base64 and unarchived types are refused with problems."""
    receipt = await archived_branch(branch)
    body = {"kind": "signature", "content_type": "image/png", "data": "@@not-base64@@"}
    status, problem, _ = await branch.call("POST", f"/v1/applications/{receipt}/archive", body=body)
    assert (status, problem["code"]) == (422, "invalid-request")
    body["content_type"] = "text/plain"
    status, problem, _ = await branch.call("POST", f"/v1/applications/{receipt}/archive", body=body)
    assert (status, problem["code"]) == (422, "invalid-request")
    good = {
        "kind": "signature",
        "content_type": "image/png",
        "data": base64.b64encode(SIGNATURE).decode(),
    }
    unknown = receipt[:-7] + "99999"
    status, problem, _ = await branch.call(
        "POST", f"/v1/applications/{unknown}0/archive", body=good
    )
    assert status in {400, 404}


async def test_missing_images_keep_the_archive_incomplete_and_the_month_unexported(
    branch: Branch, tmp_path: Path
) -> None:
    """The effect commits at once; the images follow; until then the month cannot be exported."""
    status, result, _ = await branch.call("POST", "/v1/operations/apply", body=apply_body())
    assert (status, result["archive_status"]) == (200, "incomplete")
    receipt = str(result["receipt_number"])
    status, page, _ = await branch.call("GET", "/v1/applications?archive=incomplete")
    assert [item["receipt_number"] for item in page["items"]] == [receipt]

    api = branch.daemon.teller.archive if branch.daemon.teller else None
    assert api is not None
    with pytest.raises(ArchiveError, match=receipt):
        await export_month(api.archive, api.sessions, "2026-11", tmp_path / "refused.zip")
    assert not (tmp_path / "refused.zip").exists()

    image = {"kind": "credential-image", "content_type": "image/jpeg"}
    image["data"] = base64.b64encode(b"\xff\xd8id-card-front" * 20).decode()
    status, _, _ = await branch.call("POST", f"/v1/applications/{receipt}/archive", body=image)
    assert status == 201
    status, found, _ = await branch.call("GET", f"/v1/applications/{receipt}")
    assert found["archive_status"] == "incomplete"  # scene and signature still missing

    waiver = {"reason": "签字板故障，纸质表单已签字留存"}
    path = f"/v1/applications/{receipt}/archive-waiver"
    status, problem, _ = await branch.call("POST", path, body=waiver)
    assert (status, problem["code"]) == (403, "forbidden")  # a teller may not waive
    status, waived, _ = await branch.call("POST", path, body=waiver, role="supervisor")
    assert (status, waived["archive_status"], waived["waived_by"]) == (
        200,
        "waived",
        "supervisor-01",
    )
    status, problem, _ = await branch.call("POST", path, body=waiver, role="supervisor")
    assert (status, problem["code"]) == (409, "archive-not-incomplete")
    assert await export_month(api.archive, api.sessions, "2026-11", tmp_path / "ok.zip") == 1


async def test_all_three_images_complete_the_archive(branch: Branch) -> None:
    """Credential, scene and signature: complete; a status query needs none."""
    receipt = await archived_branch(branch)
    status, found, _ = await branch.call("GET", f"/v1/applications/{receipt}")
    assert (status, found["archive_status"]) == (200, "complete")

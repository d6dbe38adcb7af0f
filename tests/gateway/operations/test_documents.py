"""Identity documents: kept with the person, one person several, one document one person."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from stdnum.cn import ric

from gateway.people.rows import IdentityDocumentRow, PersonRow
from tests.gateway.branch import ADULT, AGENT, Branch, apply_body

pytestmark = pytest.mark.integration

PASSPORT = {"type": "passport", "number": "E12345678"}


async def _count(branch: Branch, model: Any) -> int:  # noqa: ANN401 - a mapped class
    async with branch.daemon.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


async def test_a_shown_document_is_kept_and_counts_as_its_material(branch: Branch) -> None:
    """A passport shown is the applicant's identity material; the person keeps both documents."""
    body = apply_body(materials=["photo"])
    body["applicant"] = {**body["applicant"], "document": PASSPORT}
    status, result, _ = await branch.call("POST", "/v1/operations/apply", body=body)
    assert status == 200, result
    status, person, _ = await branch.call(
        "GET", "/v1/persons/cards", headers={"X-Identity-Number": ADULT}
    )
    assert status == 200, person
    assert person["documents"] == [
        {"type": "prc-id-card", "number": "110105********002X"},
        {"type": "passport", "number": "E1*****78"},
    ]
    async with branch.daemon.engine.connect() as conn:
        stored = (await conn.execute(select(IdentityDocumentRow.number_enc))).scalars().all()
    assert all(b"E12345678" not in blob for blob in stored)  # sealed


async def test_one_document_belongs_to_one_person(branch: Branch) -> None:
    """Another person showing the same passport is refused; nothing of the request is stored."""
    first = apply_body()
    first["applicant"] = {**first["applicant"], "document": PASSPORT}
    status, result, _ = await branch.call("POST", "/v1/operations/apply", body=first)
    assert status == 200, result
    persons, documents = await _count(branch, PersonRow), await _count(branch, IdentityDocumentRow)
    other = apply_body()
    other["applicant"] = {"id_number": AGENT, "name": "李四", "document": PASSPORT}
    status, problem, _ = await branch.call("POST", "/v1/operations/apply", body=other)
    assert (status, problem["code"], problem["document_type"]) == (
        409,
        "document-taken",
        "passport",
    )
    assert (await _count(branch, PersonRow), await _count(branch, IdentityDocumentRow)) == (
        persons,
        documents,
    )


@pytest.mark.parametrize(
    ("document", "number"),
    [
        ("passport", "E12!"),
        ("hmt-residence-permit", "110105194912310021"),
        ("foreign-permanent-residence", "812345678901234567"),
    ],
)
async def test_a_malformed_document_number_is_named(
    branch: Branch, document: str, number: str
) -> None:
    """A number not of its type's format: 422, the one-time notice names the document."""
    body = apply_body()
    body["applicant"] = {**body["applicant"], "document": {"type": document, "number": number}}
    status, problem, _ = await branch.call("POST", "/v1/operations/apply", body=body)
    assert (status, problem["code"]) == (422, "incomplete-request")
    assert [m["code"] for m in problem["missing"]] == ["invalid:applicant-document"]
    assert number not in str(problem)


async def test_a_residence_permit_is_its_own_material(branch: Branch) -> None:
    """港澳台居民居住证: a valid number satisfies the identity requirement."""
    permit = "81000019940823002"
    permit += ric.calc_check_digit(permit + "0")
    body = apply_body(materials=["photo"])
    body["applicant"] = {
        **body["applicant"],
        "document": {"type": "hmt-residence-permit", "number": permit},
    }
    status, result, _ = await branch.call("POST", "/v1/operations/apply", body=body)
    assert status == 200, result

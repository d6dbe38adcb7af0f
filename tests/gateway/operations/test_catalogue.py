import io
from collections.abc import Sequence

import pytest
from PIL import Image

from gateway.operations.catalogue import CATALOGUE, Case, Channel, Material, Operation, Role
from gateway.operations.completeness import check_completeness, check_photo

M = Material


def photo(
    size: tuple[int, int] = (358, 441),
    dpi: int | None = 300,
    background: tuple[int, int, int] = (255, 255, 255),
    image_format: str = "JPEG",
) -> bytes:
    """A synthetic photo: background colour with a grey 'person' in the middle."""
    image = Image.new("RGB", size, background)
    w, h = size
    image.paste((90, 90, 90), (w // 4, h // 4, 3 * w // 4, h))
    out = io.BytesIO()
    options = {"dpi": (dpi, dpi)} if dpi else {}
    image.save(out, format=image_format, **options)
    return out.getvalue()


def codes(items: Sequence[object]) -> list[str]:
    """The codes of a list of deficiencies."""
    return [getattr(item, "code") for item in items]  # noqa: B009


def test_every_operation_is_in_the_catalogue() -> None:
    """The catalogue has one entry per operation, each with a checklist per accepted case."""
    assert set(CATALOGUE) == set(Operation)
    for spec in CATALOGUE.values():
        for cases in spec.channels.values():
            assert cases <= set(spec.requirements), spec.operation
        assert spec.title_zh
        assert spec.title_en
        assert spec.sources


def test_new_card_two_missing_materials_listed_at_once() -> None:
    """An application missing the photo and the agent's ID lists both, nothing else."""
    spec = CATALOGUE[Operation.APPLY]
    found = check_completeness(spec, Case.ADULT_PROXY, Channel.WINDOW, {M.APPLICANT_PASSPORT})
    assert codes(found) == ["missing:photo", "missing:agent-identity"]
    assert all(d.title_zh and d.title_en for d in found)


def test_complete_application_passes() -> None:
    """A complete request has no deficiencies."""
    spec = CATALOGUE[Operation.APPLY]
    found = check_completeness(
        spec, Case.SELF, Channel.WINDOW, {M.APPLICANT_ID_CARD, M.PHOTO}, photo()
    )
    assert found == []


def test_online_adult_proxy_refused() -> None:
    """Online new cards are never made by proxy for an adult."""
    spec = CATALOGUE[Operation.APPLY]
    found = check_completeness(
        spec,
        Case.ADULT_PROXY,
        Channel.ONLINE,
        {M.APPLICANT_ID_CARD, M.PHOTO, M.AGENT_ID_CARD},
        photo(),
    )
    assert codes(found) == ["case-not-allowed"]
    assert Case.MINOR_PROXY in spec.allowed_cases(Channel.ONLINE)


def test_minor_photo_optional() -> None:
    """A minor's application needs no photo."""
    spec = CATALOGUE[Operation.APPLY]
    found = check_completeness(
        spec, Case.MINOR_PROXY, Channel.WINDOW, {M.APPLICANT_HOUSEHOLD_REGISTER, M.AGENT_SS_CARD}
    )
    assert found == []


@pytest.mark.parametrize(
    ("operation", "case"),
    [
        (Operation.PIN_CHANGE, Case.ADULT_PROXY),
        (Operation.PIN_CHANGE, Case.MINOR_PROXY),
        (Operation.BATCH_TO_SINGLE, Case.ADULT_PROXY),
        (Operation.INFO_CHANGE, Case.ADULT_PROXY),
    ],
)
def test_holder_only_operations_refuse_proxies(operation: Operation, case: Case) -> None:
    """PIN change and batch-to-single are for the holder in person only."""
    spec = CATALOGUE[operation]
    assert case not in spec.allowed_cases(Channel.WINDOW)
    assert "case-not-allowed" in codes(
        check_completeness(spec, case, Channel.WINDOW, set(Material))
    )


def test_kiosk_cannot_cancel_and_sensitive_operations_need_approval() -> None:
    """Cancellation and rollback are window-only and need a supervisor approval."""
    for operation in (Operation.CANCEL, Operation.ROLLBACK, Operation.BATCH_TO_SINGLE):
        spec = CATALOGUE[operation]
        assert Role.KIOSK not in spec.roles
        assert spec.needs_approval
        assert not spec.allowed_cases(Channel.KIOSK)


def test_fees_and_live_only() -> None:
    """Reissue, replace and renew cost 20 yuan; PIN operations are live-only."""
    assert {op for op, s in CATALOGUE.items() if s.fee_yuan} == {
        Operation.REISSUE,
        Operation.REPLACE,
        Operation.RENEW,
    }
    assert all(CATALOGUE[op].fee_yuan == 20 for op in (Operation.REISSUE, Operation.RENEW))
    assert {op for op, s in CATALOGUE.items() if s.live_only} == {
        Operation.PIN_CHANGE,
        Operation.PIN_RESET,
        Operation.UNLOCK,
    }


def test_time_limits() -> None:
    """Window work is immediate (24 h on faults); online applications 30 working days."""
    apply = CATALOGUE[Operation.APPLY]
    assert apply.limit_for(Channel.WINDOW).immediate
    assert apply.limit_for(Channel.WINDOW).fault_hours == 24
    assert apply.limit_for(Channel.ONLINE).workdays == 30
    assert CATALOGUE[Operation.BATCH_APPLY].time_limit.workdays == 10


def test_good_photo_passes() -> None:
    """A conforming photo has no deficiency."""
    assert check_photo(photo()) == []


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"size": (300, 400)}, ["photo:size"]),
        ({"dpi": 72}, ["photo:dpi"]),
        ({"dpi": None}, ["photo:dpi"]),
        ({"background": (30, 80, 200)}, ["photo:background"]),
        ({"image_format": "PNG"}, ["photo:not-jpeg"]),
        (
            {"size": (100, 100), "dpi": 96, "background": (0, 0, 0), "image_format": "PNG"},
            ["photo:not-jpeg", "photo:size", "photo:dpi", "photo:background"],
        ),
    ],
)
def test_each_failed_photo_rule_is_its_own_item(
    kwargs: dict[str, object], expected: list[str]
) -> None:
    """Format, size, DPI and background are separate items, all reported together."""
    assert codes(check_photo(photo(**kwargs))) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [b"", b"not an image", b"\xff\xd8\xff" + b"\x00" * 50])
def test_unreadable_photo(data: bytes) -> None:
    """Bytes that are no image give one clear item, never an exception."""
    assert codes(check_photo(data)) == ["photo:photo-unreadable"]


def test_a_declared_photo_must_be_sent() -> None:
    """Declaring the photo without sending the image is a deficiency of its own."""
    spec = CATALOGUE[Operation.APPLY]
    found = check_completeness(spec, Case.SELF, Channel.WINDOW, {M.APPLICANT_ID_CARD, M.PHOTO})
    assert codes(found) == ["photo:photo-image-missing"]

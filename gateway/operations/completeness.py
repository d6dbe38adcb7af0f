"""Completeness check with one-time notice (一次性告知).

A request is checked against its catalogue entry as a whole, and **every**
problem is reported at once: the case not accepted on this channel, each
missing material, each failed photo rule. Each item has a stable code and
Chinese and English text, so a teller can read the whole list to the applicant
once (DB 6523/T 372-2023 §6.2 b).

Photo rules (citizen guide, seed 000): JPEG, 358×441 pixels, at least 300 DPI,
white background. The background is measured on the image itself: 95 % of
the pixels of a 4-pixel strip along the top edge and the upper half of both
sides (where no shoulders are) must be near white.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from PIL import Image, UnidentifiedImageError

from gateway.operations.catalogue import Material

if TYPE_CHECKING:
    from collections.abc import Collection

    from gateway.operations.catalogue import Case, Channel, OperationSpec

__all__ = ["Deficiency", "check_completeness", "check_photo", "decoded_photo"]

PHOTO_SIZE: Final = (358, 441)  # pixels, width x height
PHOTO_MIN_DPI: Final = 300
BORDER: Final = 4  # pixels measured on each edge
WHITE_LEVEL: Final = 230  # every channel at or above this counts as white
WHITE_SHARE: Final = 0.95  # of the border pixels
MAX_PHOTO_BYTES: Final = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Deficiency:
    """One thing wrong with a request, as the one-time notice lists it."""

    code: str
    title_zh: str
    title_en: str

    def as_dict(self) -> dict[str, str]:
        """The JSON form used in problem documents."""
        return {"code": self.code, "title_zh": self.title_zh, "title_en": self.title_en}


def check_completeness(  # noqa: PLR0913 - the request's parts
    spec: OperationSpec,
    case: Case,
    channel: Channel,
    materials: Collection[Material],
    photo: bytes | None = None,
    *,
    photo_on_record: bool = False,
) -> list[Deficiency]:
    """Everything missing or invalid in a request; empty when it is complete.

    ``photo_on_record``: the holder's record has a photo, so the photo
    requirement is met without a new one (002 §6.1.3.2 b).
    """
    found: list[Deficiency] = []
    if case not in spec.allowed_cases(channel):
        found.append(
            Deficiency(
                "case-not-allowed",
                f"{spec.title_zh}不受理此类申办（{case.value}，{channel.value}）",
                f"{spec.title_en}: not accepted for {case.value} on the {channel.value} channel",
            )
        )
    given = set(materials) | ({Material.PHOTO} if photo_on_record else set())
    found.extend(
        Deficiency(f"missing:{req.code}", f"缺少：{req.title_zh}", f"Missing: {req.title_en}")
        for req in spec.requirements_for(case, channel)
        if not req.any_of & given
    )
    if photo is not None:
        found.extend(check_photo(photo))
    elif Material.PHOTO in materials:
        found.append(
            _photo("photo-image-missing", "已申报照片但未提交影像", "Photo declared but not sent")
        )
    return found


def decoded_photo(text: str | None) -> bytes | None:
    """A request's base64 photo; ``b""`` when it is not base64 (:func:`check_photo` says so)."""
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""


def check_photo(data: bytes) -> list[Deficiency]:
    """Every photo rule the image fails (an unreadable image fails all at once)."""
    if len(data) > MAX_PHOTO_BYTES:
        return [_photo("photo-too-large", "照片文件过大（不超过2MB）", "Photo file over 2 MB")]
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return _photo_rules(image)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return [_photo("photo-unreadable", "照片无法识别", "Photo cannot be read as an image")]


def _photo(code: str, zh: str, en: str) -> Deficiency:
    return Deficiency(f"photo:{code}", zh, en)


def _photo_rules(image: Image.Image) -> list[Deficiency]:
    found: list[Deficiency] = []
    if image.format != "JPEG":
        found.append(_photo("not-jpeg", "照片须为JPG/JPEG格式", "Photo must be JPEG"))
    if image.size != PHOTO_SIZE:
        width, height = image.size
        found.append(
            _photo(
                "size",
                f"照片须为358×441像素（当前{width}×{height}）",
                f"Photo must be 358x441 pixels (is {width}x{height})",
            )
        )
    dpi = image.info.get("dpi")
    # PNG stores dots per metre: 300 DPI reads back as 299.9994.
    if not dpi or min(round(float(dpi[0])), round(float(dpi[1]))) < PHOTO_MIN_DPI:
        found.append(_photo("dpi", "照片分辨率须不低于300DPI", "Photo must be at least 300 DPI"))
    if not _white_border(image.convert("RGB")):
        found.append(_photo("background", "照片须为白色背景", "Photo background must be white"))
    return found


def _white_border(image: Image.Image) -> bool:
    width, height = image.size
    if width <= 2 * BORDER or height <= 2 * BORDER:
        return False
    # Top edge and the upper half of both sides: shoulders reach the bottom edge
    # (and the lower sides) of a conforming portrait.
    half = height // 2
    boxes = [
        (0, 0, width, BORDER),
        (0, BORDER, BORDER, half),
        (width - BORDER, BORDER, width, half),
    ]
    total = white = 0
    for box in boxes:
        raw = image.crop(box).tobytes()  # RGB, 3 bytes a pixel
        for i in range(0, len(raw), 3):
            total += 1
            white += min(raw[i], raw[i + 1], raw[i + 2]) >= WHITE_LEVEL
    return white >= WHITE_SHARE * total

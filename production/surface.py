"""The card surface: a 1016x648 panel rendered from a layout with Pillow.

The front of the card carries the photo, the name, the social security
number, the card number and the issue date (year and month). Text and the
dithered photo go on the black (``k``) resin panel at 1 bit per pixel, and
the overlay (``o``) panel varnishes the whole card. A set bit means ink.

The default font has no Chinese glyphs: a branch sets
:attr:`CardLayout.font_path` to a CJK font (e.g. Noto Sans CJK).
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from protocols.printer.frames import PANEL_HEIGHT, PANEL_WIDTH, Depth, Panel, panel_size

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable

__all__ = ["CardFace", "CardLayout", "render_panels", "render_preview"]

_DEFAULT_FONTS: Final = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
)
_INK_THRESHOLD: Final = 128


@dataclass(frozen=True, slots=True)
class CardFace:
    """What is printed on the card (personal data: never logged).

    Attributes:
        name: The holder's name.
        ssn: Social security number.
        card_number: Card number.
        issue_date: Issue date.
        photo: The holder's photo (JPEG or PNG), if any.
    """

    name: str = field(repr=False)
    ssn: str = field(repr=False)
    card_number: str
    issue_date: dt.date
    photo: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CardLayout:
    """Where each item goes on the 1016x648 panel (pixels, 300 dpi).

    Attributes:
        photo_box: Left, top, right, bottom of the photo.
        name_at: Top-left of the name.
        ssn_at: Top-left of the social security number.
        card_number_at: Top-left of the card number.
        issue_date_at: Top-left of the issue date.
        font_size: Text size in pixels.
        font_path: A TrueType/OpenType font (CJK for Chinese names).
        labels: Label printed before each item.
    """

    photo_box: tuple[int, int, int, int] = (60, 170, 330, 530)
    name_at: tuple[int, int] = (380, 180)
    ssn_at: tuple[int, int] = (380, 270)
    card_number_at: tuple[int, int] = (380, 360)
    issue_date_at: tuple[int, int] = (380, 450)
    font_size: int = 40
    font_path: Path | None = None
    labels: dict[str, str] = field(
        default_factory=lambda: {
            "name": "姓名 ",
            "ssn": "社会保障号码 ",
            "card_number": "卡号 ",
            "issue_date": "发卡日期 ",
        }
    )


_fonts = threading.local()  # a FreeType face is not shared between threads


def _font(layout: CardLayout) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The layout's font, loaded once per thread (a CJK face takes about 1 ms to open)."""
    cache: dict[tuple[Path | None, int], ImageFont.FreeTypeFont | ImageFont.ImageFont]
    cache = _fonts.__dict__.setdefault("cache", {})
    key = (layout.font_path, layout.font_size)
    font = cache.get(key)
    if font is None:
        font = cache[key] = _load_font(layout)
    return font


def _load_font(layout: CardLayout) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    candidates = [layout.font_path] if layout.font_path else list(_DEFAULT_FONTS)
    for path in candidates:
        if path is not None and path.exists():
            return ImageFont.truetype(str(path), layout.font_size)
    return ImageFont.load_default(layout.font_size)


def _texts(face: CardFace, layout: CardLayout) -> tuple[tuple[tuple[int, int], str], ...]:
    labels = layout.labels
    return (
        (layout.name_at, labels.get("name", "") + face.name),
        (layout.ssn_at, labels.get("ssn", "") + face.ssn),
        (layout.card_number_at, labels.get("card_number", "") + face.card_number),
        (layout.issue_date_at, labels.get("issue_date", "") + face.issue_date.strftime("%Y.%m")),
    )


def _photo(face: CardFace, size: tuple[int, int]) -> Image.Image | None:
    """The holder's photo in greyscale, cropped and scaled to ``size``; ``None`` if unreadable."""
    if not face.photo:
        return None
    try:
        with Image.open(io.BytesIO(face.photo)) as raw:
            raw.draft("L", size)  # a JPEG decodes straight to grey (and smaller when it can)
            return ImageOps.fit(raw.convert("L"), size)
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _draw_face(
    image: Image.Image,
    face: CardFace,
    layout: CardLayout,
    ink: int,
    photo_ink: Callable[[Image.Image], Image.Image],
) -> Image.Image:
    """Draw the texts and the photo (through ``photo_ink``) on ``image`` in ``ink``."""
    draw = ImageDraw.Draw(image)
    font = _font(layout)
    for position, text in _texts(face, layout):
        draw.text(position, text, fill=ink, font=font)
    left, top, right, bottom = layout.photo_box
    photo = _photo(face, (right - left, bottom - top))
    if photo is not None:
        image.paste(photo_ink(photo), (left, top))
    elif not face.photo:  # an unreadable photo leaves the box blank
        draw.rectangle(layout.photo_box, outline=ink, width=3)
    return image


def render_preview(face: CardFace, layout: CardLayout) -> Image.Image:
    """The card front as a greyscale image (white card, black ink)."""
    blank = Image.new("L", (PANEL_WIDTH, PANEL_HEIGHT), 255)
    return _draw_face(blank, face, layout, 0, lambda photo: photo)


def render_panels(face: CardFace, layout: CardLayout) -> list[tuple[Panel, Depth, bytes]]:
    """The panels to print: black at 1 bit (dithered photo and text), full overlay.

    Each panel is packed most significant bit first, 1016 pixels per row,
    a set bit meaning ink. Text is drawn at 1 bit (resin prints no grey) and
    only the photo is dithered, which is also what keeps this cheap: the
    dither runs over the photo, not the whole card.
    """
    blank = Image.new("1", (PANEL_WIDTH, PANEL_HEIGHT), 0)
    ink = _draw_face(blank, face, layout, 1, lambda photo: ImageOps.invert(photo).convert("1"))
    black = ink.tobytes()
    overlay = b"\xff" * panel_size(Depth.LEVELS_2)
    return [(Panel.BLACK, Depth.LEVELS_2, black), (Panel.OVERLAY, Depth.LEVELS_2, overlay)]

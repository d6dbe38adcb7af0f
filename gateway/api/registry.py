"""The API's sections beyond the core routes (see :class:`gateway.api.routes.ApiSection`).

A module with its own routes exports ``SECTION`` and is listed here, once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from gateway.api import batch_routes, card_routes, notice_routes, production_routes

if TYPE_CHECKING:
    from gateway.api.routes import ApiSection

__all__ = ["SECTIONS"]

SECTIONS: Final[tuple[ApiSection, ...]] = (
    card_routes.SECTION,
    production_routes.SECTION,
    batch_routes.SECTION,
    notice_routes.SECTION,
)

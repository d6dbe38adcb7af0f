"""What a feature's service raises when it refuses a request: its own reason, no HTTP.

Every feature names its refusals in a ``StrEnum`` of its own (``errors.py``) and
raises :class:`Refusal` (or its own subclass) with one of them, the English and
Chinese detail of this occurrence, and any members the caller needs (the state
it found, the missing materials, ...). The feature's routes map each reason to a
registered problem in one table, ``ApiSection.problems``; the application's
problem middleware renders a refusal through the tables of the sections it
serves. A service never knows a status code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from enum import StrEnum

__all__ = ["Refusal"]


class Refusal(Exception):  # noqa: N818 - the domain's own word for it
    """A request refused by a service, for a reason of its feature.

    Attributes:
        reason: The feature's stable reason (a ``StrEnum`` member).
        detail: English text of this occurrence.
        detail_zh: Chinese text of this occurrence.
        members: Extra members for the problem document (JSON values).
    """

    def __init__(self, reason: StrEnum, detail: str, detail_zh: str, **members: Any) -> None:  # noqa: ANN401 - JSON values
        """Keep the reason, both texts and the members."""
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.detail_zh = detail_zh
        self.members = members

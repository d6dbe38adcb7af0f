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

from typing import TYPE_CHECKING, Any, Protocol, Self

if TYPE_CHECKING:
    from collections.abc import Sequence
    from enum import StrEnum


class _Listed(Protocol):
    """One item of a one-time notice (a missing or invalid material)."""

    def as_dict(self) -> dict[str, str]: ...


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

    @classmethod
    def one_time_notice(cls, reason: StrEnum, missing: Sequence[_Listed]) -> Self:
        """Everything missing or invalid, all at once (一次性告知): member ``missing``."""
        return cls(
            reason,
            f"{len(missing)} item(s) missing or invalid; all are listed.",
            f"共{len(missing)}项材料缺失或不符合要求（一次性告知）。",
            missing=[item.as_dict() for item in missing],
        )

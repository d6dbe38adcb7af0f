"""The stock ledger, the card surface, and the journal's schema."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest

from gateway.issuance.rows import ProductionJobRow
from gateway.runtime.db import create_engine
from gateway.runtime.migrate import upgrade
from gateway.runtime.rows import Base
from production import (
    ApprovalRequiredError,
    CardFace,
    CardLayout,
    MemoryJournal,
    Reconciliation,
    StockError,
    StockLedger,
    render_panels,
)
from protocols.printer.frames import Depth, Panel, panel_size
from tests.fakes import FakeClock
from tests.production.conftest import photo_png

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


async def test_adjustment_needs_a_supervisor() -> None:
    """No approver, or the operator approving themself, is refused."""
    ledger = StockLedger(MemoryJournal(), FakeClock())
    await ledger.load("s1", 10, box="BOX-1", operator="op-1")
    with pytest.raises(ApprovalRequiredError):
        await ledger.adjust("s1", -1, operator="op-1", approver=None, reason="counted")
    with pytest.raises(ApprovalRequiredError):
        await ledger.adjust("s1", -1, operator="op-1", approver="op-1", reason="counted")
    entry = await ledger.adjust("s1", -1, operator="op-1", approver="sup-1", reason="counted")
    assert entry.approver == "sup-1"
    assert (await ledger.balance("s1")).remaining == 9


async def test_only_spoiled_cards_can_be_destroyed() -> None:
    """Destroying more than the spoiled cards is refused."""
    ledger = StockLedger(MemoryJournal(), FakeClock())
    await ledger.load("s1", 5, box="BOX-1", operator="op-1")
    with pytest.raises(StockError):
        await ledger.destroy("s1", 1, operator="op-1", reason="shredded")
    await ledger.spoil_blank("s1", operator="op-1", reason="bent")
    await ledger.destroy("s1", 1, operator="op-1", reason="shredded")
    balance = await ledger.balance("s1")
    assert (balance.taken, balance.spoiled, balance.destroyed, balance.remaining) == (1, 1, 1, 4)


async def test_reconciliation_mismatch_raises_an_alert() -> None:
    """A count that disagrees with the ledger is reported through the alert callback."""
    alerts: list[Reconciliation] = []
    clock = FakeClock()
    ledger = StockLedger(MemoryJournal(), clock, on_alert=alerts.append)
    await ledger.load("s1", 10, box="BOX-1", operator="op-1")
    good = await ledger.reconcile(counted={"s1": 10}, held_by_jobs={})
    assert good.ok
    assert good.day == dt.date(2026, 11, 23)
    assert alerts == []
    bad = await ledger.reconcile(counted={"s1": 8}, held_by_jobs={"s1": 1})
    assert not bad.ok
    assert len(bad.problems) == 2
    assert alerts == [bad]


def _face(name: str, photo: bytes | str | None) -> CardFace:
    return CardFace(
        name=name,
        ssn="33010619900101123X",
        card_number="B00000001",
        issue_date=dt.date(2026, 11, 23),
        photo=photo_png() if photo == "png" else photo,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("photo", [None, b"not an image", "png"])
def test_surface_panels(photo: bytes | str | None) -> None:
    """The surface is a black 1-bit panel with ink and a full overlay, whatever the photo."""
    panels = render_panels(_face("ZHANG San", photo), CardLayout())
    assert [(p, d) for p, d, _ in panels] == [
        (Panel.BLACK, Depth.LEVELS_2),
        (Panel.OVERLAY, Depth.LEVELS_2),
    ]
    black = panels[0][2]
    assert len(black) == panel_size(Depth.LEVELS_2)
    assert any(black)
    assert panels[1][2] == b"\xff" * panel_size(Depth.LEVELS_2)


async def test_migration_matches_the_journal_models(database_url: str) -> None:
    """Migration 0006 creates exactly the tables the journal models describe."""
    from alembic.autogenerate import compare_metadata  # noqa: PLC0415
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    import gateway.tables  # noqa: F401, PLC0415 - every table on the metadata

    assert ProductionJobRow.__tablename__ in Base.metadata.tables
    engine = create_engine(database_url)
    try:
        await upgrade(engine)

        def diff(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))

        async with engine.connect() as conn:
            differences = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert differences == []


def _ink_in(black: bytes, box: tuple[int, int, int, int]) -> int:
    """Set bits (ink) of the packed 1-bit panel inside ``box`` (left, top, right, bottom)."""
    left, top, right, bottom = box
    row_bytes = 1016 // 8 + (1 if 1016 % 8 else 0)
    return sum(
        (black[y * row_bytes + x // 8] >> (7 - x % 8)) & 1
        for y in range(top, bottom)
        for x in range(left, right)
    )


@pytest.mark.parametrize("photo", [None, b"not an image", "png"])
def test_surface_puts_ink_where_the_layout_says(photo: bytes | str | None) -> None:
    """Text at its place, the photo dithered in its box, a frame only when no photo is given."""
    layout = CardLayout()
    black = render_panels(_face("张三", photo), layout)[0][2]
    x, y = layout.name_at
    assert _ink_in(black, (x, y, x + 400, y + 60)) > 0
    left, top, right, bottom = layout.photo_box
    inside = _ink_in(black, (left + 10, top + 10, right - 10, bottom - 10))
    frame = _ink_in(black, (left, top, right, top + 3))
    area = (right - left - 20) * (bottom - top - 20)
    if photo == "png":  # grey 100 of 255: about 60 % ink, dithered
        assert 0.4 * area < inside < 0.8 * area
    elif photo is None:
        assert (inside, frame) == (0, (right - left) * 3)
    else:  # an unreadable photo leaves the box blank
        assert (inside, frame) == (0, 0)
    assert _ink_in(black, (700, 560, 1016, 648)) == 0  # nothing outside the layout

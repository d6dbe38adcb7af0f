"""The monitor's database: alerts, downsampled history, and the last message per topic.

The monitor has a database of its own (SQLite by default, PostgreSQL for a
province with several monitors), separate from any branch database and from
the branch's Alembic chain. Its schema is created by :meth:`MonitorStore.create`
(``create_all``) and stamped with :data:`SCHEMA_VERSION` in ``monitor_schema``;
a database stamped with another version is refused, never altered (the monitor
keeps telemetry, not records: drop and recreate it on a version change).

Tables:

- ``monitor_alerts``: one row per alert from raise to clear; at most one
  uncleared row per key (a partial unique index), so several monitors raising
  the same alert store it once.
- ``monitor_history``: ``(branch, series, resolution, bucket) -> value``;
  minute buckets (``m``) are folded into hour buckets (``h``) after
  ``minute_hours`` and hour buckets dropped after ``hour_days``
  (:meth:`MonitorStore.downsample`).
- ``monitor_current``: the newest payload of every topic with its receive
  time, so a monitor that starts (or a fellow monitor in a shared group) finds
  the state retained messages no longer bring.
- ``monitor_audit_checkpoints``: every audit checkpoint a branch sent (never
  only the last), with whether its signature verified against the branch's
  configured key; a redelivered one is stored once (the whole message is the
  key, so a forged copy sent first cannot keep the genuine one out). ``branchd audit verify
  --monitor`` compares the branch's log with them. (Added without a new schema
  version: ``create_all`` adds the table to a version-1 database.)
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from gateway.monitor.alerts import Alert
from gateway.runtime.rows import NAMING_CONVENTION, UTCDateTime

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
    from sqlalchemy.sql.dml import Insert

    from gateway.monitor.state import Sample

__all__ = ["SCHEMA_VERSION", "MonitorStore", "SchemaMismatchError", "metadata"]

SCHEMA_VERSION: Final = 1
HOUR: Final = 3600
_IN_CHUNK: Final = 500  # keys per IN (...) query
_CREATE_ATTEMPTS: Final = 3  # monitors starting together race to create the tables

metadata = MetaData(naming_convention=NAMING_CONVENTION)

schema_table = Table("monitor_schema", metadata, Column("version", Integer, primary_key=True))

alerts_table = Table(
    "monitor_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),
    Column("rule", String(40), nullable=False),
    Column("branch", String(64), nullable=False),
    Column("device", String(64)),
    Column("severity", String(16), nullable=False),
    Column("detail", String(200), nullable=False),
    Column("raised_at", UTCDateTime, nullable=False),
    Column("cleared_at", UTCDateTime),
    Column("acked_by", String(64)),
    Column("acked_at", UTCDateTime),
)
Index(
    "uq_monitor_alerts_active_key",
    alerts_table.c.key,
    unique=True,
    sqlite_where=alerts_table.c.cleared_at.is_(None),
    postgresql_where=alerts_table.c.cleared_at.is_(None),
)
Index("ix_monitor_alerts_raised_at", alerts_table.c.raised_at)

history_table = Table(
    "monitor_history",
    metadata,
    Column("branch", String(64), primary_key=True),
    Column("series", String(32), primary_key=True),
    Column("resolution", String(1), primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("value", Float, nullable=False),
)

current_table = Table(
    "monitor_current",
    metadata,
    Column("topic", String(400), primary_key=True),
    Column("payload", LargeBinary, nullable=False),
    Column("received", Float, nullable=False),  # seconds since the epoch
)
Index("ix_monitor_current_received", current_table.c.received)


audit_checkpoints_table = Table(
    "monitor_audit_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("branch", String(64), nullable=False),
    Column("period_start", BigInteger, nullable=False),
    Column("period_end", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("key_version", Integer, nullable=False),
    Column("signature", String(512), nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("received", UTCDateTime, nullable=False),
)
Index(
    "uq_monitor_audit_checkpoints_message",
    audit_checkpoints_table.c.branch,
    audit_checkpoints_table.c.period_end,
    audit_checkpoints_table.c.last_seq,
    audit_checkpoints_table.c.last_hash,
    audit_checkpoints_table.c.signature,
    unique=True,
)

#: The columns of one checkpoint as the API and :meth:`MonitorStore.add_checkpoint` take it.
CHECKPOINT_FIELDS: Final = (
    "period_start", "period_end", "last_seq", "last_hash", "key_id", "key_version", "signature",
)  # fmt: skip


class SchemaMismatchError(Exception):
    """The database was made by another version of the monitor."""


def _insert(engine: AsyncEngine) -> type[postgresql.Insert | sqlite.Insert]:
    return postgresql.Insert if engine.dialect.name == "postgresql" else sqlite.Insert


async def _executemany(
    conn: AsyncConnection, statement: Insert, rows: list[dict[str, Any]]
) -> None:
    """Run ``statement`` once per row through the driver's own ``executemany``.

    SQLAlchemy builds each row's parameters in Python, which costs more than
    the database's work for the tens of thousands of small rows of a flush; the
    compiled SQL and plain tuples skip that. Values must need no conversion
    (str, bytes, int, float).
    """
    compiled = statement.compile(dialect=conn.dialect)
    names = compiled.positiontup
    if not compiled.positional or names is None:  # a named paramstyle: the ordinary way
        await conn.execute(statement, rows)
        return
    await conn.exec_driver_sql(compiled.string, [tuple(row[n] for n in names) for row in rows])


class MonitorStore:
    """Reads and writes of the monitor (see the module docstring)."""

    def __init__(self, engine: AsyncEngine) -> None:
        """Use ``engine`` (the caller disposes of it)."""
        self.engine = engine
        self._greatest = func.greatest if engine.dialect.name == "postgresql" else func.max

    async def create(self) -> None:
        """Create the tables if needed; refuse a database of another schema version.

        Raises:
            SchemaMismatchError: It carries another version.
        """
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                async with self.engine.begin() as conn:
                    await conn.run_sync(metadata.create_all)
                break
            except DBAPIError:  # a fellow monitor created a table in between: look again
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise
        async with self.engine.begin() as conn:
            found = (await conn.execute(select(schema_table.c.version))).scalars().all()
            if not found:
                await conn.execute(insert(schema_table).values(version=SCHEMA_VERSION))
            elif list(found) != [SCHEMA_VERSION]:
                msg = f"monitor database has schema {found}, this build needs {SCHEMA_VERSION}"
                raise SchemaMismatchError(msg)

    # ------------------------------------------------------------ history

    async def write_samples(self, samples: Iterable[Sample]) -> int:
        """Add samples (``sum``) or raise bucket values (``max``); return rows written."""
        merged: dict[tuple[str, str, str, int], tuple[float, str]] = {}
        for s in samples:
            key = (s.branch, s.series, s.resolution, s.bucket)
            old = merged.get(key)
            if old is None:
                merged[key] = (s.value, s.mode)
            elif s.mode == "sum":
                merged[key] = (old[0] + s.value, "sum")
            else:
                merged[key] = (max(old[0], s.value), "max")
        by_mode: dict[str, list[dict[str, object]]] = defaultdict(list)
        for (branch, series, resolution, bucket), (value, mode) in merged.items():
            by_mode[mode].append(
                {
                    "branch": branch,
                    "series": series,
                    "resolution": resolution,
                    "bucket": bucket,
                    "value": value,
                }
            )
        if not merged:
            return 0
        insert_ = _insert(self.engine)
        async with self.engine.begin() as conn:
            for mode, rows in by_mode.items():
                statement = insert_(history_table)
                column = history_table.c.value
                new = (
                    column + statement.excluded.value
                    if mode == "sum"
                    else self._greatest(column, statement.excluded.value)
                )
                await _executemany(
                    conn,
                    statement.on_conflict_do_update(
                        index_elements=["branch", "series", "resolution", "bucket"],
                        set_={"value": new},
                    ),
                    rows,
                )
        return len(merged)

    async def downsample(self, now: datetime, minute_hours: float, hour_days: float) -> int:
        """Fold minute buckets older than ``minute_hours`` into hours; drop old hours.

        Errors add up; the other (gauge) series keep the hour's maximum.
        Returns the minute rows folded.
        """
        cutoff = int(now.timestamp() - minute_hours * HOUR) // HOUR * HOUR
        h = history_table.c
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(h.branch, h.series, h.bucket, h.value).where(
                        and_(h.resolution == "m", h.bucket < cutoff)
                    )
                )
            ).all()
            folded: dict[tuple[str, str, int], float] = {}
            for branch, series, bucket, value in rows:
                key = (branch, series, int(bucket) // HOUR * HOUR)
                old = folded.get(key)
                if old is None:
                    folded[key] = value
                else:
                    folded[key] = old + value if series == "errors" else max(old, value)
            if folded:
                insert_ = _insert(self.engine)
                for mode in ("sum", "max"):
                    chosen = [
                        {"branch": b, "series": s, "resolution": "h", "bucket": k, "value": v}
                        for (b, s, k), v in folded.items()
                        if (s == "errors") == (mode == "sum")
                    ]
                    if not chosen:
                        continue
                    statement = insert_(history_table)
                    new = (
                        h.value + statement.excluded.value
                        if mode == "sum"
                        else self._greatest(h.value, statement.excluded.value)
                    )
                    await conn.execute(
                        statement.on_conflict_do_update(
                            index_elements=["branch", "series", "resolution", "bucket"],
                            set_={"value": new},
                        ),
                        chosen,
                    )
                await conn.execute(
                    history_table.delete().where(and_(h.resolution == "m", h.bucket < cutoff))
                )
            oldest = int(now.timestamp() - hour_days * 24 * HOUR)
            await conn.execute(
                history_table.delete().where(and_(h.resolution == "h", h.bucket < oldest))
            )
        return len(rows)

    async def hourly(
        self, series: str, since: datetime, branch: str | None = None
    ) -> list[tuple[int, float]]:
        """Hour buckets of ``series`` from ``since`` (one branch or the province's sum).

        Minute buckets are folded on the fly (errors add up, gauges take the
        maximum), so the answer is the same before and after downsampling.
        """
        h = history_table.c
        query = select(h.branch, h.resolution, h.bucket, h.value).where(
            and_(h.series == series, h.bucket >= int(since.timestamp()) // HOUR * HOUR)
        )
        if branch is not None:
            query = query.where(h.branch == branch)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        per_branch: dict[tuple[str, int], float] = {}
        additive = series in {"errors", "cards_issued", "cards_spoiled"}
        for row_branch, _resolution, bucket, value in rows:
            key = (row_branch, int(bucket) // HOUR * HOUR)
            old = per_branch.get(key)
            if old is None:
                per_branch[key] = value
            elif series == "errors":
                per_branch[key] = old + value
            else:
                per_branch[key] = max(old, value)
        total: dict[int, float] = defaultdict(float)
        for (_branch, hour), value in per_branch.items():
            total[hour] = total[hour] + value if additive else max(total[hour], value)
        return sorted(total.items())

    # ------------------------------------------------------------ alerts

    async def record(self, raised: list[Alert], cleared: list[Alert]) -> None:
        """Store raised and cleared alerts in one transaction.

        A raised alert another monitor stored first is not stored again: the
        stored row (its id, raise time and acknowledgement) is taken over.
        """
        if not raised and not cleared:
            return
        a = alerts_table.c
        insert_ = _insert(self.engine)
        async with self.engine.begin() as conn:
            for alert in cleared:
                await conn.execute(
                    update(alerts_table)
                    .where(and_(a.key == alert.key, a.cleared_at.is_(None)))
                    .values(cleared_at=alert.cleared_at)
                )
            if not raised:
                return
            rows = [
                {
                    "key": alert.key,
                    "rule": alert.rule,
                    "branch": alert.branch,
                    "device": alert.device,
                    "severity": alert.severity,
                    "detail": alert.detail[:200],
                    "raised_at": alert.raised_at,
                }
                for alert in raised
            ]
            statement = insert_(alerts_table).on_conflict_do_nothing(
                index_elements=["key"], index_where=a.cleared_at.is_(None)
            )
            await conn.execute(statement, rows)
            by_key = {alert.key: alert for alert in raised}
            keys = list(by_key)
            for start in range(0, len(keys), _IN_CHUNK):
                chunk = keys[start : start + _IN_CHUNK]
                found = await conn.execute(
                    select(alerts_table).where(and_(a.key.in_(chunk), a.cleared_at.is_(None)))
                )
                for row in found:
                    stored = _alert(row._mapping)  # noqa: SLF001 - SQLAlchemy's row mapping
                    alert = by_key[stored.key]
                    alert.id, alert.raised_at = stored.id, stored.raised_at
                    alert.acked_by, alert.acked_at = stored.acked_by, stored.acked_at

    async def acknowledge(self, alert_id: int, by: str, at: datetime) -> Alert | None:
        """Acknowledge an alert (once); return it, or ``None`` when there is no such alert."""
        a = alerts_table.c
        async with self.engine.begin() as conn:
            await conn.execute(
                update(alerts_table)
                .where(and_(a.id == alert_id, a.acked_at.is_(None)))
                .values(acked_by=by[:64], acked_at=at)
            )
            row = (await conn.execute(select(alerts_table).where(a.id == alert_id))).first()
        return None if row is None else _alert(row._mapping)  # noqa: SLF001

    async def active_alerts(self) -> list[Alert]:
        """Every alert not cleared."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(select(alerts_table).where(alerts_table.c.cleared_at.is_(None)))
            ).all()
        return [_alert(row._mapping) for row in rows]  # noqa: SLF001

    async def recent_alerts(self, limit: int = 200) -> list[Alert]:
        """The newest alerts, cleared ones included."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(alerts_table).order_by(alerts_table.c.id.desc()).limit(limit)
                )
            ).all()
        return [_alert(row._mapping) for row in rows]  # noqa: SLF001

    # ------------------------------------------------------------ audit checkpoints

    async def add_checkpoint(
        self, branch: str, fields: dict[str, Any], *, verified: bool, received: datetime
    ) -> bool:
        """Keep one checkpoint of ``branch``; return whether it was new (not a redelivery)."""
        row = {**{name: fields[name] for name in CHECKPOINT_FIELDS}, "branch": branch}
        statement = (
            _insert(self.engine)(audit_checkpoints_table)
            .values(**row, verified=verified, received=received)
            .on_conflict_do_nothing(
                index_elements=["branch", "period_end", "last_seq", "last_hash", "signature"]
            )
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(statement)
        return bool(result.rowcount)

    async def checkpoints(self, branch: str) -> list[dict[str, Any]]:
        """Every checkpoint kept for ``branch``, by period, then as received."""
        c = audit_checkpoints_table.c
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(audit_checkpoints_table)
                    .where(c.branch == branch)
                    .order_by(c.period_end, c.id)
                )
            ).all()
        return [
            {
                "start": row.period_start,
                "end": row.period_end,
                "last_seq": row.last_seq,
                "last_hash": row.last_hash,
                "key_id": row.key_id,
                "key_version": row.key_version,
                "signature": row.signature,
                "verified": bool(row.verified),
                "received": row.received.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            }
            for row in rows
        ]

    # ------------------------------------------------------------ current state

    async def write_current(self, rows: dict[str, tuple[bytes, float]]) -> None:
        """Keep the newest payload of each topic (newer receive time wins)."""
        if not rows:
            return
        insert_ = _insert(self.engine)
        statement = insert_(current_table)
        c = current_table.c
        async with self.engine.begin() as conn:
            await _executemany(
                conn,
                statement.on_conflict_do_update(
                    index_elements=["topic"],
                    set_={
                        "payload": statement.excluded.payload,
                        "received": statement.excluded.received,
                    },
                    where=c.received < statement.excluded.received,
                ),
                [{"topic": t, "payload": p, "received": r} for t, (p, r) in rows.items()],
            )

    async def read_current(self, since: float = 0.0) -> list[tuple[str, bytes, float]]:
        """Topics received at or after ``since`` (seconds since the epoch), oldest first."""
        c = current_table.c
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(c.topic, c.payload, c.received)
                    .where(c.received >= since)
                    .order_by(c.received)
                )
            ).all()
        return [(topic, bytes(payload), float(received)) for topic, payload, received in rows]


def _alert(row: object) -> Alert:
    data = dict(row)  # type: ignore[call-overload]
    return Alert(
        key=data["key"],
        rule=data["rule"],
        branch=data["branch"],
        device=data["device"],
        severity=data["severity"],
        detail=data["detail"],
        raised_at=data["raised_at"],
        id=data["id"],
        cleared_at=data["cleared_at"],
        acked_by=data["acked_by"],
        acked_at=data["acked_at"],
    )


def epoch(moment: datetime) -> float:
    """Seconds since the epoch of an aware datetime."""
    return moment.astimezone(UTC).timestamp()

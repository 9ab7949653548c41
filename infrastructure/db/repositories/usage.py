"""SQLAlchemy adapter of the usage ledger: idempotent batch inserts and aggregate queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, case, cast, func, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from domain.llm.model import KeyOwner
from domain.usage.model import UsageGrouping, UsageQuery, UsageRecord, UsageStatus, UsageTotals
from domain.usage.ports import UsageRepository
from infrastructure.db.mapping import USAGE_COLUMNS, usage_record_values
from infrastructure.db.repositories.base import SqlAlchemyRepository
from infrastructure.db.tables import usage_records

u = usage_records.c


# PostgreSQL: one statement per batch, each column sent as one array and turned back into rows by ``unnest``. It
# is several times faster than an executemany of row tuples (one bind per column, not per value).
_PG_TYPES = {
    "id": "uuid",
    "created_at": "timestamptz",
    "user_id": "uuid",
    "api_key_id": "uuid",
    "conversation_id": "uuid",
    "input_tokens": "integer",
    "output_tokens": "integer",
    "cached_tokens": "integer",
    "cache_write_tokens": "integer",
    "cost_micros": "bigint",
    "cache_savings_micros": "bigint",
    "latency_ms": "integer",
    "ttft_ms": "integer",
    "cached": "boolean",
    "streamed": "boolean",
    "estimated": "boolean",
    "batch_id": "uuid",
    "batch_priced": "boolean",
}
_PG_ARRAYS = ", ".join(f"CAST(:{column} AS {_PG_TYPES.get(column, 'text')}[])" for column in USAGE_COLUMNS)
# Built from the constant column list and types above, never from input.
_PG_BULK_INSERT = text(
    f"INSERT INTO usage_records ({', '.join(USAGE_COLUMNS)}) SELECT * FROM unnest({_PG_ARRAYS}) "  # noqa: S608
    "ON CONFLICT (id) DO NOTHING"
)


_FIELDS = attrgetter(*USAGE_COLUMNS)


class SqlAlchemyUsageRepository(SqlAlchemyRepository, UsageRepository):
    async def add_many(self, records: Sequence[UsageRecord]) -> None:
        if not records:
            return
        if self._dialect == "postgresql":
            columns = dict(zip(USAGE_COLUMNS, map(list, zip(*map(_FIELDS, records), strict=True)), strict=True))
            columns["status"] = [status.value for status in columns["status"]]
            columns["key_owner"] = [owner.value for owner in columns["key_owner"]]
            await self._session.execute(_PG_BULK_INSERT, columns)
            return
        statement = sqlite_insert(usage_records).on_conflict_do_nothing(index_elements=[u.id])
        await self._session.execute(statement, [usage_record_values(record) for record in records])

    async def summarize(self, query: UsageQuery) -> list[UsageTotals]:
        group = self._group(query.group_by)
        columns: list[Any] = [
            func.count().label("requests"),
            _sum(case((u.cached, 1), else_=0)).label("cached_requests"),
            _sum(case((u.status != UsageStatus.SUCCESS.value, 1), else_=0)).label("failed_requests"),
            _sum(u.input_tokens).label("input_tokens"),
            _sum(u.output_tokens).label("output_tokens"),
            _sum(u.cached_tokens).label("cached_tokens"),
            _sum(u.cache_write_tokens).label("cache_write_tokens"),
            _sum(u.cost_micros).label("cost_micros"),
            _sum(u.cache_savings_micros).label("cache_savings_micros"),
        ]
        statement = select(*columns).where(*self._conditions(query))
        if group is not None:
            statement = statement.add_columns(group.label("grp")).group_by(group).order_by(group.is_(None), group)
        rows = (await self._session.execute(statement)).mappings().all()
        return [
            UsageTotals(
                group=_group_value(row["grp"]) if group is not None else None,
                requests=row["requests"],
                cached_requests=row["cached_requests"],
                failed_requests=row["failed_requests"],
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                cached_tokens=row["cached_tokens"],
                cache_write_tokens=row["cache_write_tokens"],
                cost_micros=row["cost_micros"],
                cache_savings_micros=row["cache_savings_micros"],
            )
            for row in rows
        ]

    async def total_cost(
        self, *, since: datetime, user_id: uuid.UUID | None = None, api_key_id: uuid.UUID | None = None
    ) -> int:
        conditions = [u.created_at >= since, u.key_owner == KeyOwner.OPERATOR.value]  # a user's own key: not ours
        if user_id is not None:
            conditions.append(u.user_id == user_id)
        if api_key_id is not None:
            conditions.append(u.api_key_id == api_key_id)
        statement = select(_sum(u.cost_micros)).where(*conditions)
        return int((await self._session.execute(statement)).scalar_one())

    @property
    def _dialect(self) -> str:
        return self._session.get_bind().dialect.name

    def _group(self, grouping: UsageGrouping | None) -> ColumnElement[Any] | None:
        if grouping is UsageGrouping.DAY:
            if self._dialect == "postgresql":
                return func.to_char(func.timezone("UTC", u.created_at), "YYYY-MM-DD")
            return func.strftime("%Y-%m-%d", u.created_at)  # SQLite keeps UTC text
        if grouping is UsageGrouping.MODEL:
            return u.model
        if grouping is UsageGrouping.KEY:
            return u.api_key_id
        if grouping is UsageGrouping.USER:
            return u.user_id
        if grouping is UsageGrouping.KEY_OWNER:
            return u.key_owner
        return None

    @staticmethod
    def _conditions(query: UsageQuery) -> list[ColumnElement[bool]]:
        conditions = [u.created_at >= query.since, u.created_at < query.until]
        if query.user_id is not None:
            conditions.append(u.user_id == query.user_id)
        if query.api_key_id is not None:
            conditions.append(u.api_key_id == query.api_key_id)
        if query.model is not None:
            conditions.append(u.model == query.model)
        return conditions


def _sum(expression: ColumnElement[Any]) -> ColumnElement[int]:
    """A sum that is 0, not NULL, over no rows, and an integer on every engine (PostgreSQL sums bigints as numeric)."""
    return cast(func.coalesce(func.sum(expression), 0), BigInteger())


def _group_value(value: object) -> str | None:
    return None if value is None else str(value)

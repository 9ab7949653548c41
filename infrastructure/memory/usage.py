"""In-memory adapter of the usage ledger, behaving like the SQL one (the contract tests check it)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from domain.llm.model import KeyOwner
from domain.usage.model import UsageGrouping, UsageQuery, UsageRecord, UsageStatus, UsageTotals
from domain.usage.ports import UsageRepository
from infrastructure.memory.repositories import InMemoryRepository

_GROUP: dict[UsageGrouping, Callable[[UsageRecord], object]] = {
    UsageGrouping.DAY: lambda r: r.created_at.astimezone(UTC).strftime("%Y-%m-%d"),
    UsageGrouping.MODEL: lambda r: r.model,
    UsageGrouping.KEY: lambda r: r.api_key_id,
    UsageGrouping.USER: lambda r: r.user_id,
    UsageGrouping.KEY_OWNER: lambda r: r.key_owner.value,
}


def _totals(group: str | None, records: list[UsageRecord]) -> UsageTotals:
    return UsageTotals(
        group=group,
        requests=len(records),
        cached_requests=sum(1 for r in records if r.cached),
        failed_requests=sum(1 for r in records if r.status is not UsageStatus.SUCCESS),
        input_tokens=sum(r.input_tokens for r in records),
        output_tokens=sum(r.output_tokens for r in records),
        cached_tokens=sum(r.cached_tokens for r in records),
        cache_write_tokens=sum(r.cache_write_tokens for r in records),
        cost_micros=sum(r.cost_micros for r in records),
        cache_savings_micros=sum(r.cache_savings_micros for r in records),
    )


class InMemoryUsageRepository(InMemoryRepository, UsageRepository):
    async def add_many(self, records: Sequence[UsageRecord]) -> None:
        self._tx.check_open()
        for record in records:
            if self._tx.usage_records.get(record.id) is None:
                self._tx.usage_records.put(record)

    async def summarize(self, query: UsageQuery) -> list[UsageTotals]:
        self._tx.check_open()
        records = self._tx.usage_records.where(lambda r: _matches(r, query))
        if query.group_by is None:
            return [_totals(None, records)]
        key = _GROUP[query.group_by]
        groups: dict[str | None, list[UsageRecord]] = {}
        for record in records:
            value = key(record)
            groups.setdefault(None if value is None else str(value), []).append(record)
        return [_totals(group, groups[group]) for group in sorted(groups, key=lambda g: (g is None, g or ""))]

    async def total_cost(
        self, *, since: datetime, user_id: uuid.UUID | None = None, api_key_id: uuid.UUID | None = None
    ) -> int:
        self._tx.check_open()
        return sum(
            r.cost_micros
            for r in self._tx.usage_records.rows()
            if r.created_at >= since
            and r.key_owner is KeyOwner.OPERATOR  # a call made with a user's own key is not charged to budgets
            and (user_id is None or r.user_id == user_id)
            and (api_key_id is None or r.api_key_id == api_key_id)
        )


def _matches(record: UsageRecord, query: UsageQuery) -> bool:
    return (
        query.since <= record.created_at < query.until
        and (query.user_id is None or record.user_id == query.user_id)
        and (query.api_key_id is None or record.api_key_id == query.api_key_id)
        and (query.model is None or record.model == query.model)
    )

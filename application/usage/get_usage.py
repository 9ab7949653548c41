"""The caller's usage: totals and groups over a time range, and where their budgets stand."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from application.auth.access import require_scope
from application.unit_of_work import UnitOfWorkFactory
from application.usage.budgets import Budgets
from domain.auth.model import Principal, Scope
from domain.shared.clock import Clock
from domain.shared.errors import RuleViolation
from domain.usage.model import BudgetPeriod, BudgetStatus, UsageGrouping, UsageQuery, UsageTotals

MAX_RANGE = timedelta(days=366)


@dataclass(frozen=True, kw_only=True)
class GetUsageCommand:
    """``since`` defaults to the start of the budget month, ``until`` to now. ``user_id`` is for admins only."""

    principal: Principal
    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None
    api_key_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    group_by: UsageGrouping | None = None


@dataclass(frozen=True, kw_only=True)
class UsageReport:
    since: datetime
    until: datetime
    totals: UsageTotals
    groups: list[UsageTotals]
    budgets: list[BudgetStatus]


def usage_query(command: GetUsageCommand, now: datetime, *, user_id: uuid.UUID | None) -> UsageQuery:
    since = command.since or BudgetPeriod.containing(now).start
    until = command.until or now + timedelta(seconds=1)
    if since >= until:
        raise RuleViolation("since must be before until")
    if until - since > MAX_RANGE:
        raise RuleViolation("the time range must be at most 366 days")
    return UsageQuery(
        since=since,
        until=until,
        user_id=user_id,
        api_key_id=command.api_key_id,
        model=command.model,
        group_by=command.group_by,
    )


async def usage_report(uow_factory: UnitOfWorkFactory, query: UsageQuery) -> tuple[UsageTotals, list[UsageTotals]]:
    async with uow_factory() as uow:
        totals = await uow.usage.summarize(replace(query, group_by=None))
        groups = await uow.usage.summarize(query) if query.group_by is not None else []
    return (totals[0] if totals else UsageTotals()), groups


class GetUsage:
    def __init__(self, *, uow: UnitOfWorkFactory, budgets: Budgets, clock: Clock) -> None:
        self._uow = uow
        self._budgets = budgets
        self._clock = clock

    async def execute(self, command: GetUsageCommand) -> UsageReport:
        require_scope(command.principal, Scope.USAGE)
        if command.user_id is not None and command.user_id != command.principal.user_id:
            raise RuleViolation("user_id is only for the admin usage report")
        if command.group_by is UsageGrouping.USER:
            raise RuleViolation("grouping by user is only for the admin usage report")
        query = usage_query(command, self._clock.now(), user_id=command.principal.user_id)
        totals, groups = await usage_report(self._uow, query)
        budgets = await self._budgets.status(command.principal)
        return UsageReport(since=query.since, until=query.until, totals=totals, groups=groups, budgets=budgets)

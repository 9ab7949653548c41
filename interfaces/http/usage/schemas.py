from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from application.usage.get_usage import UsageReport
from domain.usage.model import BudgetStatus, BudgetSubject, UsageTotals
from interfaces.http.limits import usd


class UsageTotalsResponse(BaseModel):
    group: str | None = Field(
        None,
        description=(
            "The group's value: a day (YYYY-MM-DD, UTC), a model, a key id, a user id, or whose provider key paid "
            "(`operator` or `user`)."
        ),
    )
    requests: int
    cached_requests: int = Field(description="Answered from the response cache, at no cost.")
    failed_requests: int = Field(description="Ended in an upstream error or cancelled.")
    input_tokens: int
    output_tokens: int
    cached_tokens: int = Field(description="Input tokens the provider served from its prompt cache (cache reads).")
    cache_write_tokens: int = Field(0, description="Input tokens written to the provider's prompt cache.")
    cost_micros: int = Field(description="Cost in micro-dollars (1 USD = 1,000,000).")
    cost_usd: Decimal
    cache_savings_micros: int = Field(0, description="What the cache reads saved against the plain input price.")
    cache_savings_usd: Decimal = Decimal(0)

    @classmethod
    def of(cls, totals: UsageTotals) -> UsageTotalsResponse:
        return cls(
            group=totals.group,
            requests=totals.requests,
            cached_requests=totals.cached_requests,
            failed_requests=totals.failed_requests,
            input_tokens=totals.input_tokens,
            output_tokens=totals.output_tokens,
            cached_tokens=totals.cached_tokens,
            cache_write_tokens=totals.cache_write_tokens,
            cost_micros=totals.cost_micros,
            cost_usd=usd(totals.cost_micros),
            cache_savings_micros=totals.cache_savings_micros,
            cache_savings_usd=usd(totals.cache_savings_micros),
        )


class BudgetResponse(BaseModel):
    scope: BudgetSubject = Field(description="`user` (all your calls) or `api_key` (this key's calls).")
    id: uuid.UUID
    monthly_budget_usd: Decimal | None = Field(description="null: no budget set.")
    spent_usd: Decimal
    remaining_usd: Decimal | None
    spent_micros: int
    period_start: datetime
    period_end: datetime

    @classmethod
    def of(cls, status: BudgetStatus) -> BudgetResponse:
        remaining = status.remaining_micros
        return cls(
            scope=status.subject,
            id=status.subject_id,
            monthly_budget_usd=None if status.limit_micros is None else usd(status.limit_micros),
            spent_usd=usd(status.spent_micros),
            remaining_usd=None if remaining is None else usd(remaining),
            spent_micros=status.spent_micros,
            period_start=status.period.start,
            period_end=status.period.end,
        )


class UsageResponse(BaseModel):
    since: datetime
    until: datetime
    totals: UsageTotalsResponse
    groups: list[UsageTotalsResponse] = Field(description="One entry per group when `group_by` was given.")
    budgets: list[BudgetResponse] = Field(description="The caller's budgets this month (not in the admin report).")

    @classmethod
    def of(cls, report: UsageReport) -> UsageResponse:
        return cls(
            since=report.since,
            until=report.until,
            totals=UsageTotalsResponse.of(report.totals),
            groups=[UsageTotalsResponse.of(g) for g in report.groups],
            budgets=[BudgetResponse.of(b) for b in report.budgets],
        )

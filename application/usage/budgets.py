"""Spending limits per user and per API key, checked against running counters, never a SUM per request.

Each (user or key, month) has a counter in the ``SpendCounter`` (in memory, or Redis shared by every instance). A
counter is seeded once from the ledger (a SUM over the month) the first time it is needed, then only incremented as
calls are charged. A call's charge and its usage record are settled together (``Meter.settle``): a counter first
met by a charge (no budget on it, so not seeded at admission) may, rarely, be seeded from a ledger that already holds
that very call and so count it twice.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from application.unit_of_work import UnitOfWorkFactory
from application.usage.degraded import DegradedWarning
from domain.auth.model import Principal
from domain.shared.clock import Clock
from domain.shared.errors import DependencyUnavailable
from domain.usage.errors import BudgetExceeded
from domain.usage.model import MICROS_PER_USD, BudgetPeriod, BudgetStatus, BudgetSubject
from domain.usage.ports import SpendCounter

COUNTER_GRACE = timedelta(days=7)  # counters outlive their month a little, for late charges and reports


def _usd(micros: int) -> str:
    """Exact dollars without trailing zeros: 20, 20.5, 0.00002."""
    return format((Decimal(micros) / MICROS_PER_USD).normalize(), "f")


class Budgets:
    def __init__(self, *, counter: SpendCounter, uow: UnitOfWorkFactory, clock: Clock, fail_open: bool) -> None:
        self._counter = counter
        self._uow = uow
        self._clock = clock
        self._fail_open = fail_open
        self._degraded = DegradedWarning("spend counter")

    async def check(self, principal: Principal, estimated_micros: int = 0) -> None:
        """Raises ``BudgetExceeded`` when a budget is used up or the prompt alone would overrun it."""
        subjects = [s for s in _subjects(principal) if s[2] is not None]
        if not subjects:
            return
        period = BudgetPeriod.containing(self._clock.now())
        try:
            spent = await self._spent([(kind, subject_id) for kind, subject_id, _ in subjects], period)
        except DependencyUnavailable as exc:
            if not self._fail_open:
                raise
            self._degraded.warn(exc, "budgets are not enforced (fail-open)")
            return
        for (kind, _, limit), used in zip(subjects, spent, strict=True):
            assert limit is not None
            if used >= limit or used + estimated_micros > limit:
                name = "API key" if kind is BudgetSubject.API_KEY else "user"
                raise BudgetExceeded(
                    f"the {name}'s monthly budget of {_usd(limit)} USD is used up ({_usd(used)} USD spent "
                    f"since {period.start.date()})",
                    budget=kind.value,
                    limit_micros=limit,
                    spent_micros=used,
                )

    async def charge(self, principal: Principal, micros: int) -> None:
        """Adds a call's cost to the user's and the key's counters (seeding a counter met for the first time)."""
        if micros <= 0:
            return
        period = BudgetPeriod.containing(self._clock.now())
        subjects = [(kind, subject_id) for kind, subject_id, _ in _subjects(principal)]
        keys = [_counter_key(kind, subject_id, period) for kind, subject_id in subjects]
        existed = await self._counter.add(keys, micros)
        for (kind, subject_id), key, found in zip(subjects, keys, existed, strict=True):
            if not found:
                await self._seed(kind, subject_id, period)
                await self._counter.add([key], micros)

    async def status(self, principal: Principal) -> list[BudgetStatus]:
        """The caller's budgets this month: limit, spent and remaining (``None`` limit: no budget set).

        With the counters unreachable, the spend is read from the ledger (as of its last write).
        """
        period = BudgetPeriod.containing(self._clock.now())
        subjects = _subjects(principal)
        try:
            spent = await self._spent([(kind, subject_id) for kind, subject_id, _ in subjects], period)
        except DependencyUnavailable:
            spent = [await self._ledger_total(kind, subject_id, period) for kind, subject_id, _ in subjects]
        return [
            BudgetStatus(subject=kind, subject_id=subject_id, limit_micros=limit, spent_micros=used, period=period)
            for (kind, subject_id, limit), used in zip(subjects, spent, strict=True)
        ]

    async def _spent(self, subjects: Sequence[tuple[BudgetSubject, uuid.UUID]], period: BudgetPeriod) -> list[int]:
        keys = [_counter_key(kind, subject_id, period) for kind, subject_id in subjects]
        values = await self._counter.get(keys)
        if all(value is not None for value in values):
            return [value or 0 for value in values]
        for (kind, subject_id), value in zip(subjects, values, strict=True):
            if value is None:
                await self._seed(kind, subject_id, period)
        return [value or 0 for value in await self._counter.get(keys)]

    async def _seed(self, kind: BudgetSubject, subject_id: uuid.UUID, period: BudgetPeriod) -> None:
        total = await self._ledger_total(kind, subject_id, period)
        ttl = int((period.end + COUNTER_GRACE - self._clock.now()).total_seconds())
        await self._counter.seed(_counter_key(kind, subject_id, period), total, max(ttl, 1))

    async def _ledger_total(self, kind: BudgetSubject, subject_id: uuid.UUID, period: BudgetPeriod) -> int:
        async with self._uow() as uow:
            if kind is BudgetSubject.USER:
                return await uow.usage.total_cost(since=period.start, user_id=subject_id)
            return await uow.usage.total_cost(since=period.start, api_key_id=subject_id)


def _subjects(principal: Principal) -> list[tuple[BudgetSubject, uuid.UUID, int | None]]:
    subjects = [(BudgetSubject.USER, principal.user_id, principal.user_limits.monthly_budget_micros)]
    if principal.api_key_id is not None:
        subjects.append((BudgetSubject.API_KEY, principal.api_key_id, principal.key_limits.monthly_budget_micros))
    return subjects


def _counter_key(kind: BudgetSubject, subject_id: uuid.UUID, period: BudgetPeriod) -> str:
    return _key(kind, subject_id, period.start.year, period.start.month)


@functools.lru_cache(maxsize=65_536)
def _key(kind: BudgetSubject, subject_id: uuid.UUID, year: int, month: int) -> str:
    return f"spend:{kind.value}:{subject_id}:{year:04d}-{month:02d}"

"""Spending limits per user and per API key, checked against running counters, never a SUM per request.

Each (user or key, month) has a counter in the ``SpendCounter`` (in memory, or Redis shared by every instance). A
counter is seeded once from the ledger (a SUM over the month) the first time it is needed, then only incremented as
calls are charged. A call's charge and its usage record are settled together (``Meter.settle``): a counter first
met by a charge (no budget on it, so not seeded at admission) may, rarely, be seeded from a ledger that already holds
that very call and so count it twice.

Admission *holds* a call's most possible cost (``reserve``) on every budget that has a limit, atomically across
instances: a call is let in only when the spend plus the holds of the calls in flight plus its own leaves the budget
within its limit. Settlement charges what the call really cost and releases its hold (``charge``). So fifty
concurrent calls on a nearly spent budget are not all let in together: at most the calls that fit are, and the
overshoot is bounded by the error of one call's estimate. A hold of an instance that died lapses after
``HOLD_TTL_SECONDS``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from application.degraded import DegradedWarning
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal
from domain.shared.clock import Clock
from domain.shared.errors import DependencyUnavailable
from domain.shared.ids import new_id
from domain.usage.errors import BudgetExceeded
from domain.usage.model import MICROS_PER_USD, BudgetPeriod, BudgetStatus, BudgetSubject
from domain.usage.ports import Hold, HoldResult, SpendCounter

COUNTER_GRACE = timedelta(days=7)  # counters outlive their month a little, for late charges and reports
HOLD_TTL_SECONDS = 900  # far beyond any call's deadline: only an instance that died leaves a hold to lapse
Subject = tuple[BudgetSubject, uuid.UUID, int | None]


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

    @staticmethod
    def apply_to(principal: Principal) -> bool:
        """Whether the caller has a budget to hold against (``reserve`` does nothing otherwise)."""
        return any(limit is not None for _, _, limit in _subjects(principal))

    async def reserve(self, principal: Principal, most_micros: int) -> Hold | None:
        """Holds ``most_micros`` on each of the caller's budgets that has a limit, or raises ``BudgetExceeded`` when
        one is used up or lacks room for it. ``None``: nothing to hold (no limit, or counters down and fail-open)."""
        subjects = [s for s in _subjects(principal) if s[2] is not None]
        if not subjects:
            return None
        period = BudgetPeriod.containing(self._clock.now())
        keys = tuple(_counter_key(kind, subject_id, period) for kind, subject_id, _ in subjects)
        limits = [limit or 0 for _, _, limit in subjects]
        hold_id = str(new_id())
        try:
            found = await self._counter.hold(keys, limits, most_micros, hold_id, HOLD_TTL_SECONDS)
            if None in found.totals:  # a counter met for the first time: seed it from the ledger, then again
                for (kind, subject_id, _), total in zip(subjects, found.totals, strict=True):
                    if total is None:
                        await self._seed(kind, subject_id, period)
                found = await self._counter.hold(keys, limits, most_micros, hold_id, HOLD_TTL_SECONDS)
        except DependencyUnavailable as exc:
            if not self._fail_open:
                raise
            self._degraded.warn(exc, "budgets are not enforced (fail-open)")
            return None
        if not found.held:
            raise _refusal(subjects, found, most_micros, period)
        return Hold(id=hold_id, keys=keys)

    async def charge(self, principal: Principal, micros: int, hold: Hold | None = None) -> None:
        """Adds a call's cost to the user's and the key's counters and releases the call's hold, in one step (with
        Redis, in the round trip that also carries the call's usage record); a counter met for the first time is
        seeded from the ledger, then charged."""
        period = BudgetPeriod.containing(self._clock.now())
        subjects = [(kind, subject_id) for kind, subject_id, _ in _subjects(principal)] if micros > 0 else []
        keys = [_counter_key(kind, subject_id, period) for kind, subject_id in subjects]
        existed = await self._counter.add(keys, micros, release=hold)
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


def _refusal(subjects: list[Subject], found: HoldResult, most_micros: int, period: BudgetPeriod) -> BudgetExceeded:
    """The refusal naming the first budget without room (its total counts the calls in flight)."""
    for index, ((kind, _, limit), used) in enumerate(zip(subjects, found.totals, strict=True)):
        assert limit is not None
        used = used or 0
        last = index == len(subjects) - 1  # a counter that vanished meanwhile (evicted) refuses too: retry
        if used >= limit or used + most_micros > limit or last:
            name = "API key" if kind is BudgetSubject.API_KEY else "user"
            state = "is used up" if used >= limit else f"has no room for this call (up to {_usd(most_micros)} USD)"
            return BudgetExceeded(
                f"the {name}'s monthly budget of {_usd(limit)} USD {state}: {_usd(used)} USD spent or held by calls "
                f"in flight since {period.start.date()}",
                budget=kind.value,
                limit_micros=limit,
                spent_micros=used,
            )
    raise AssertionError("no budget to refuse")  # unreachable: the last subject always refuses


def _subjects(principal: Principal) -> list[Subject]:
    subjects = [(BudgetSubject.USER, principal.user_id, principal.user_limits.monthly_budget_micros)]
    if principal.api_key_id is not None:
        subjects.append((BudgetSubject.API_KEY, principal.api_key_id, principal.key_limits.monthly_budget_micros))
    return subjects


def _counter_key(kind: BudgetSubject, subject_id: uuid.UUID, period: BudgetPeriod) -> str:
    return _key(kind, subject_id, period.start.year, period.start.month)


@functools.lru_cache(maxsize=65_536)
def _key(kind: BudgetSubject, subject_id: uuid.UUID, year: int, month: int) -> str:
    return f"spend:{kind.value}:{subject_id}:{year:04d}-{month:02d}"

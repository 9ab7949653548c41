"""What happens around every model call: admission (budget, tokens per minute) before, accounting after.

``admit`` refuses a call before the model is asked: a budget without room for the call's most possible cost (the
prompt plus ``max_tokens`` at the prices of the dearest deployment that may serve it, fallbacks included), which it
otherwise holds (``BudgetExceeded``), or a tokens-per-minute policy without room for the prompt plus the most the
answer may take (``LimitExceeded``). ``settle`` runs once per call however it ended: it charges the real cost to the
budgets and releases the hold, gives back (or takes) the difference between the tokens reserved and those used, and
hands one ``UsageRecord`` to the recorder, all at once (with Redis, in one round trip). Settling never raises for a
limiter or counter that is down: the call happened, and its record matters more.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import cast

from application.degraded import DegradedWarning
from application.usage.budgets import Budgets
from application.usage.context import CallContext
from application.usage.rate_limits import RateLimitDefaults, token_limits, visible_states
from application.usage.request_admission import pending as pending_request_admission
from domain.llm.model import Completion, CompletionRequest, FinishReason, KeyOwner, ModelSpec
from domain.llm.ports import ModelCatalog
from domain.llm.tokens import estimate_tokens
from domain.shared.clock import Clock
from domain.shared.errors import DependencyUnavailable, DomainError
from domain.shared.ids import new_id
from domain.usage.errors import LimitExceeded
from domain.usage.model import UsageRecord, UsageStatus, cache_savings_micros, cost_micros, most_cost_micros
from domain.usage.ports import Hold, RateLimiter, UsageRecorder
from domain.usage.rate_limits import RateLimit

logger = logging.getLogger("switchboard.usage")


@dataclass(frozen=True, kw_only=True)
class Admission:
    """A call let through: when it started and what it reserved."""

    started: float  # time.monotonic()
    spec: ModelSpec | None
    limits: tuple[RateLimit, ...] = ()
    reserved_tokens: int = 0
    at_ms: int = 0
    hold: Hold | None = None  # the budgets' hold of the call's most possible cost


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How a call ended, for its usage record."""

    completion: Completion | None  # what was produced; None when nothing was (a failure before any text)
    status: UsageStatus
    error: BaseException | None = None
    ttft_ms: int | None = None
    streamed: bool = False


class Meter:
    def __init__(
        self,
        *,
        catalog: ModelCatalog,
        recorder: UsageRecorder,
        budgets: Budgets,
        limiter: RateLimiter,
        defaults: RateLimitDefaults,
        clock: Clock,
        fail_open: bool,
    ) -> None:
        self._catalog = catalog
        self._recorder = recorder
        self._budgets = budgets
        self._limiter = limiter
        self._defaults = defaults
        self._clock = clock
        self._fail_open = fail_open
        self._degraded = DegradedWarning("token rate limiter")
        self._uncounted = DegradedWarning("usage counters")

    async def admit(self, request: CompletionRequest, context: CallContext) -> Admission:
        started = time.monotonic()
        spec = self._catalog.find(request.model)
        prompt_tokens = sum(estimate_tokens(m.content) for m in request.messages)
        # The request's own count (when its front door left it to this call), the budgets' hold and the tokens'
        # admission, all at once: with Redis their script calls leave in one round trip (the script batcher sends
        # what one turn of the event loop asked for together). What one of them let through is given back when
        # another refuses; the first refusal in that order is the one reported. Only the parts that apply run, and
        # tasks are made only for two or more (the common case, one or none, is awaited as it is).
        counted = pending_request_admission()
        count = counted.make() if counted is not None else None
        hold = (
            self._budgets.reserve(context.principal, self.most_cost(request, prompt_tokens))
            if Budgets.apply_to(context.principal)
            else None
        )
        limits = token_limits(context.principal, self._defaults)
        tokens = self._admit_tokens(request, limits, spec, prompt_tokens) if limits else None
        parts: list[Awaitable[object]] = [part for part in (count, hold, tokens) if part is not None]
        if len(parts) > 1:
            results: list[object] = await asyncio.gather(*parts, return_exceptions=True)
        else:  # one or none: awaited as it is (a refusal raises, and nothing else was taken)
            results = [await part for part in parts]
        outcome = iter(results)
        counted_result = next(outcome) if count is not None else None
        held = next(outcome) if hold is not None else None
        admitted = next(outcome) if tokens is not None else Admission(started=0.0, spec=spec)
        refusal = next((r for r in (counted_result, held, admitted) if isinstance(r, BaseException)), None)
        if refusal is not None:
            await self._undo(context, held, admitted)
            raise refusal
        return replace(cast(Admission, admitted), started=started, hold=cast(Hold | None, held))

    async def _undo(self, context: CallContext, held: object, admitted: object) -> None:
        """Gives back what an admission refused by its other half had taken: the budgets' hold, the tokens."""
        undo: list[Awaitable[None]] = []
        if isinstance(held, Hold):
            undo.append(self._budgets.charge(context.principal, 0, held))
        if isinstance(admitted, Admission) and admitted.limits:
            undo.append(self._limiter.adjust(admitted.limits, -admitted.reserved_tokens, admitted.at_ms))
        for result in await asyncio.gather(*undo, return_exceptions=True):
            if isinstance(result, Exception):  # the hold lapses by itself, the tokens with their window
                self._uncounted.warn(result, "an admission refused by a limit was not given back")

    def most_cost(self, request: CompletionRequest, prompt_tokens: int) -> int:
        """The most the call may cost: its prompt and ``max_tokens`` (else each deployment's own output limit) at
        the prices of the dearest deployment that may serve it, fallbacks and A/B variants included."""
        most = 0
        for model in self._catalog.chain(request.model):
            for deployment in model.deployments:
                answer = request.max_tokens if request.max_tokens is not None else deployment.max_output_tokens
                most = max(most, most_cost_micros(prompt_tokens, answer, deployment))
        return most

    async def _admit_tokens(
        self,
        request: CompletionRequest,
        limits: tuple[RateLimit, ...],
        spec: ModelSpec | None,
        prompt_tokens: int,
    ) -> Admission:
        most = request.max_tokens if request.max_tokens is not None else (spec.max_output_tokens if spec else 0)
        # A request larger than a whole minute's quota may still pass when the window is empty.
        reserved = min(prompt_tokens + most, *(limit.limit for limit in limits))
        try:
            decision = await self._limiter.acquire(limits, reserved)
        except DependencyUnavailable as exc:
            if not self._fail_open:
                raise
            self._degraded.warn(exc, "tokens are not rate limited (fail-open)")
            return Admission(started=0.0, spec=spec)
        if not decision.allowed:
            raise LimitExceeded(
                f"rate limit '{decision.denied_by}' reached: this request may use {reserved} tokens; "
                f"retry in {math.ceil(decision.retry_after_seconds)} s",
                retry_after_seconds=decision.retry_after_seconds,
                states=visible_states(decision),
            )
        return Admission(started=0.0, spec=spec, limits=limits, reserved_tokens=reserved, at_ms=decision.at_ms)

    async def settle(
        self, admission: Admission, request: CompletionRequest, context: CallContext, outcome: Outcome
    ) -> None:
        completion = outcome.completion
        cost = saved = 0
        batch_priced = False
        if completion is not None and not completion.cached:
            spec = self._price_spec(completion, admission.spec)
            if context.batch_id is not None and spec is not None and spec.has_batch_price:
                spec, batch_priced = spec.batch_priced(), True
            cost = cost_micros(completion.usage, spec) if spec is not None else 0
            saved = cache_savings_micros(completion.usage, spec) if spec is not None else 0
        used = completion.usage.total_tokens if completion is not None and not completion.cached else 0
        # A call paid with the user's own provider key is recorded at its price but charged to no budget: budgets
        # limit what the operator pays (the hold is released all the same).
        paid_by_user = completion is not None and completion.served_by.key_owner is KeyOwner.USER
        updates = [self._budgets.charge(context.principal, 0 if paid_by_user else cost, admission.hold)]
        if admission.limits and used != admission.reserved_tokens:
            updates.append(self._limiter.adjust(admission.limits, used - admission.reserved_tokens, admission.at_ms))
        # All together: with a shared Redis the counters and the usage record go in one script run, one round trip,
        # so a crash leaves both or neither and the counters are never ahead of the ledger.
        record = self._recorder.record(
            self._record(admission, request, context, outcome, (cost, saved), batch_priced=batch_priced)
        )
        recorded, *counted = await asyncio.gather(record, *updates, return_exceptions=True)
        for result in counted:
            if isinstance(result, Exception):  # the call happened: its record matters more than the counters
                self._uncounted.warn(result, "a call's cost or tokens were not counted against the limits")
            elif isinstance(result, BaseException):
                raise result
        if isinstance(recorded, BaseException):
            raise recorded

    def _price_spec(self, completion: Completion, fallback: ModelSpec | None) -> ModelSpec | None:
        """The deployment that served the call (after fallbacks and A/B), whose prices apply."""
        spec = self._catalog.find(completion.served_by.model)
        if spec is None:
            return fallback
        try:
            return spec.deployment(completion.served_by.variant)
        except KeyError:
            return spec

    def _record(
        self,
        admission: Admission,
        request: CompletionRequest,
        context: CallContext,
        outcome: Outcome,
        money: tuple[int, int],  # the cost, and what the prompt cache saved
        *,
        batch_priced: bool = False,
    ) -> UsageRecord:
        completion = outcome.completion
        served = completion.served_by if completion is not None else None
        usage = completion.usage if completion is not None and not completion.cached else None
        error = outcome.error
        return UsageRecord(
            id=new_id(),
            created_at=self._clock.now(),
            request_id=context.request_id,
            user_id=context.principal.user_id,
            api_key_id=context.principal.api_key_id,
            conversation_id=context.conversation_id,
            model=request.model,
            served_model=served.model if served else None,
            provider=served.provider if served else None,
            upstream_model=served.upstream_model if served else None,
            variant=served.variant if served else None,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            cached_tokens=usage.cached_tokens if usage else 0,
            cache_write_tokens=usage.cache_write_tokens if usage else 0,
            cost_micros=money[0],
            cache_savings_micros=money[1],
            latency_ms=round((time.monotonic() - admission.started) * 1000),
            ttft_ms=outcome.ttft_ms,
            status=outcome.status,
            error_code=_error_code(error),
            cached=completion is not None and completion.cached,
            streamed=outcome.streamed,
            estimated=usage.estimated if usage else False,
            batch_id=context.batch_id,
            batch_priced=batch_priced,
            # A response-cache hit costs nothing: no provider key paid for it, so it names none but the default.
            key_owner=served.key_owner if served is not None and usage is not None else KeyOwner.OPERATOR,
        )


def _error_code(error: BaseException | None) -> str | None:
    if error is None:
        return None
    if isinstance(error, DomainError):
        return error.code
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return "cancelled"
    return "internal_error"


def status_of(completion: Completion) -> UsageStatus:
    if completion.finish_reason is FinishReason.CANCELLED:
        return UsageStatus.CANCELLED
    if completion.finish_reason is FinishReason.ERROR:
        return UsageStatus.ERROR
    return UsageStatus.SUCCESS

"""Settling a model call: exactly once, however it ended, and even when the request that made it was cancelled.

``Settler`` is the service-wide part (the meter, the telemetry hooks, the settlements still running for shutdown
to wait for); ``Settlement`` is one admitted call's single settlement. Every ending of every call goes through
``Settlement.settle``, and only the first one counts: a stream that ended and is then closed is settled once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from application.llm.observer import CallObserver
from application.usage.context import CallContext
from application.usage.metering import Admission, Meter, Outcome
from domain.llm.model import Completion, CompletionRequest, FinishReason, ServedBy, partial_completion
from domain.llm.tokens import estimated_usage
from domain.shared.errors import DomainError
from domain.usage.model import UsageStatus

logger = logging.getLogger("switchboard.usage")


class Settler:
    def __init__(self, *, meter: Meter | None, observer: CallObserver) -> None:
        self._meter = meter
        self.observer = observer
        self._pending: set[asyncio.Task[None]] = set()

    async def admit(self, request: CompletionRequest, context: CallContext) -> Admission:
        if self._meter is None:
            return Admission(started=time.monotonic(), spec=None)
        return await self._meter.admit(request, context)

    def open(self, admission: Admission, request: CompletionRequest, context: CallContext) -> Settlement:
        return Settlement(self, admission, request, context)

    async def run(self, work: Coroutine[Any, Any, None]) -> None:
        """Runs ``work`` in its own task and waits for it: a cancelled caller stops waiting, the task goes on (and
        ``drain`` waits for it)."""
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        await asyncio.shield(task)

    async def drain(self) -> None:
        """Waits for the settlements still running (of requests cancelled mid-way)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def record(
        self, admission: Admission, request: CompletionRequest, context: CallContext, outcome: Outcome
    ) -> None:
        completion = outcome.completion
        if completion is None or not completion.cached:
            self.observer.finished(request, outcome, time.monotonic() - admission.started)
        if self._meter is None:
            return
        try:
            await self._meter.settle(admission, request, context, outcome)
        except Exception:  # never fail a call that happened because its accounting did
            logger.exception("settling the usage of request %s failed", context.request_id)


class Settlement:
    """The one settlement of one admitted call."""

    def __init__(self, settler: Settler, admission: Admission, request: CompletionRequest, context: CallContext):
        self._settler = settler
        self.admission = admission
        self.request = request
        self.context = context
        self.settled = False

    def first_token(self, served_by: ServedBy, seconds: float) -> None:
        """The call's first output came from ``served_by``, ``seconds`` after it was admitted."""
        self._settler.observer.first_token(self.request, served_by, seconds)

    async def settle(self, outcome: Outcome) -> None:
        """Records ``outcome`` unless the call is already settled; survives the caller's cancellation."""
        if self.settled:
            return
        self.settled = True
        await self._settler.run(self._settler.record(self.admission, self.request, self.context, outcome))


def failed(
    request: CompletionRequest,
    error: BaseException,
    *,
    text: str = "",
    served_by: ServedBy | None = None,
    streamed: bool = False,
    ttft_ms: int | None = None,
) -> Outcome:
    """The outcome of a call that did not finish: the upstream's own account of it when the error carries one, else
    an estimate of what was produced, accounted to ``served_by`` (who was serving it). A failure before any text
    cost nothing; a call cut short by its client or the server is assumed to have read its prompt."""
    cancelled = not isinstance(error, DomainError) or error.code == "shutting_down"
    completion = partial_completion(error)
    if completion is None and (text or cancelled):
        reason = FinishReason.CANCELLED if cancelled else FinishReason.ERROR
        completion = Completion(
            content=text,
            finish_reason=reason,
            usage=estimated_usage(request, text),
            served_by=served_by or ServedBy(model=request.model, provider="unknown", upstream_model="unknown"),
        )
    status = UsageStatus.CANCELLED if cancelled else UsageStatus.ERROR
    return Outcome(completion=completion, status=status, error=error, streamed=streamed, ttft_ms=ttft_ms)

"""The job that runs a batch: claim a chunk of lines under a lease, run them concurrently through the model-call
pipeline, write each line's result, again until no line is left; then finalize.

Several jobs (on one worker or many) share a batch: each claims its own chunks. A job that finds every open line
held by another waits for those leases (a live worker finishes them; a dead one's come back when its lease ends),
so the batch is finalized once its last line is done, by whichever job sees it.

Delivery: a line whose worker died after asking the model and before writing the answer is asked again when its
lease ends (at least once to the provider). Each call that got an answer has its own usage record (billed once per
answer received); each line has exactly one result, written only by the claim that holds it.

The database going away for a while (``ServiceUnavailable`` from the unit of work) ends no job: a job waits and
looks again (its lines' state is in the database, which is what it waits for), and a line answered meanwhile keeps
trying to store its result while its claim holds (after that, whoever claims it next asks it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from application.batches.config import BatchLimits
from application.batches.finalize_batch import FinalizeBatch
from application.batches.lines import LineAnswer, LineCall, LineCodecs
from application.batches.principal import batch_principal
from application.batches.rate_share import BatchRateShare
from application.llm.model_call import ModelCall
from application.responses.prepare import ResponseCommand, prepare_response, store_response
from application.unit_of_work import UnitOfWork, UnitOfWorkFactory
from application.usage.context import CallContext
from domain.auth.model import Principal
from domain.batches.model import (
    CANCELLED_RESULT,
    EXPIRED_RESULT,
    Batch,
    BatchError,
    BatchLine,
    BatchStatus,
    LineResult,
    LineStatus,
)
from domain.batches.ports import BatchRepository
from domain.shared.clock import Clock
from domain.shared.errors import (
    DependencyUnavailable,
    DomainError,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
    UpstreamRateLimited,
)
from domain.usage.errors import BudgetExceeded

_log = logging.getLogger("switchboard.batches")
RETRY_LATER_SECONDS = 1.0  # a line refused for now (rate limits) is claimable again after at least this
OUTAGE_WAIT_MAX_SECONDS = 5.0  # the longest wait between two looks at a database that is away
_RETRY_LATER = (RateLimited, UpstreamRateLimited, ServiceUnavailable, DependencyUnavailable)


class _Step(enum.Enum):
    RAN = "ran"  # ran a chunk: look again at once
    WAIT = "wait"  # every open line is held by another: look again shortly
    DONE = "done"  # nothing more for this job


@dataclass
class _Chunk:
    batch: Batch
    principal: Principal
    claim_id: uuid.UUID
    until: datetime  # the claim's lease
    lines: list[BatchLine]


class RunBatch:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        model_call: ModelCall,
        codecs: LineCodecs,
        finalize: FinalizeBatch,
        clock: Clock,
        limits: BatchLimits,
        rate_share: BatchRateShare | None = None,
    ) -> None:
        self._uow = uow
        self._model_call = model_call
        self._codecs = codecs
        self._finalize = finalize
        self._clock = clock
        self._limits = limits
        self._rate_share = rate_share
        self._slots = asyncio.Semaphore(limits.line_concurrency)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """A worker shutting down: each job ends once the lines it holds are done, claiming no more (the batch's
        other jobs, or the next worker to start, run the rest)."""
        self._stopping.set()

    async def execute(self, batch_id: uuid.UUID) -> None:
        outage_wait = self._limits.poll_seconds
        while not self._stopping.is_set():
            try:
                step = await self._step(batch_id)
            except ServiceUnavailable as exc:  # the database is away: the job waits for it rather than ending
                _log.warning("batch job waiting for the database", extra={"batch_id": str(batch_id), "error": str(exc)})
                await self._pause(outage_wait)
                outage_wait = min(outage_wait * 2, OUTAGE_WAIT_MAX_SECONDS)
                continue
            outage_wait = self._limits.poll_seconds
            if step is _Step.DONE:
                return
            if step is _Step.WAIT:
                await self._pause(self._limits.poll_seconds)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _step(self, batch_id: uuid.UUID) -> _Step:
        chunk = await self._claim(batch_id)
        if isinstance(chunk, _Step):
            return chunk
        budget_spent = await self._run_chunk(chunk)
        if budget_spent is not None:
            await self._close_for_budget(chunk.batch, budget_spent)
        return _Step.RAN

    async def _claim(self, batch_id: uuid.UUID) -> _Chunk | _Step:
        now = self._clock.now()
        async with self._uow() as uow:
            batch = await uow.batches.get(batch_id, lock=True, counts=False)
            if batch.status.ended or batch.status is BatchStatus.VALIDATING:
                return _Step.DONE
            if batch.finalizing_at is not None:  # finalizing (or a cancelled batch being finalized)
                if now - batch.finalizing_at < timedelta(seconds=self._limits.lease_seconds):
                    await uow.commit()
                    return _Step.WAIT  # another job is at it; if it dies, its lease runs out and this one takes over
                return await self._take_over_finalization(uow, batch, now)
            await self._close_if_stopping(uow.batches, batch, now)
            lines: list[BatchLine] = []
            claim_id = uuid.uuid4()
            until = now + timedelta(seconds=self._limits.lease_seconds)
            if batch.status is BatchStatus.IN_PROGRESS and batch.expired_at is None:
                try:  # the lines run as their owner, through the batch's key, as they are now
                    principal = await batch_principal(uow, batch, now)
                except Unauthenticated as exc:  # no line starts: those not running fail, and the batch ends
                    await self._close_open(uow.batches, batch, exc, now)
                else:
                    lines = await uow.batches.claim_lines(
                        batch_id, now=now, until=until, claim_id=claim_id, limit=self._limits.line_concurrency
                    )
            if not lines:
                open_count, _ = await uow.batches.open_lines(batch_id)
                if open_count:
                    await uow.commit()
                    return _Step.WAIT
                return await self._take_over_finalization(uow, batch, now)
            await uow.commit()
        return _Chunk(batch, principal, claim_id, until, lines)

    async def _take_over_finalization(self, uow: UnitOfWork, batch: Batch, now: datetime) -> _Step:
        """Every line is done: this job finalizes, holding the batch for a lease (``finalizing_at``), so that
        concurrent jobs leave it alone and one of them takes over if this one dies."""
        batch.finalize(now)
        await uow.batches.update(batch)
        await uow.commit()
        await self._finalize.execute(batch)
        return _Step.DONE

    async def _close_if_stopping(self, batches: BatchRepository, batch: Batch, now: datetime) -> None:
        """Cancelled, or past its completion window: lines that have not started never will."""
        if batch.status is BatchStatus.CANCELLING:
            await batches.close_open_lines(batch.id, CANCELLED_RESULT, now)
        elif batch.status is BatchStatus.IN_PROGRESS and batch.is_past_window(now):
            batch.mark_expired(now)
            await batches.close_open_lines(batch.id, EXPIRED_RESULT, now)
            await batches.update(batch)

    async def _close_open(self, batches: BatchRepository, batch: Batch, error: DomainError, now: datetime) -> None:
        codec = self._codecs[batch.endpoint]
        failure = codec.failure(error)
        result = LineResult(status=LineStatus.FAILED, status_code=failure.status_code, body_json=_json(failure.body))
        await batches.close_open_lines(batch.id, result, now)
        batch.add_error(BatchError(code=error.code, message=error.detail))
        await batches.update(batch)

    async def _run_chunk(self, chunk: _Chunk) -> BudgetExceeded | None:
        outcomes = await asyncio.gather(*(self._run_line(chunk, line) for line in chunk.lines))
        return next((o for o in outcomes if o is not None), None)

    async def _run_line(self, chunk: _Chunk, line: BatchLine) -> BudgetExceeded | None:
        codec = self._codecs[line.url]
        request_id = "batch_req_" + uuid.uuid4().hex
        spent: BudgetExceeded | None = None
        async with self._slots:
            try:
                call = codec.parse(json.loads(line.body_json))
                if self._rate_share is not None:
                    await self._rate_share.admit(chunk.principal)
                answer = await self._call(call, chunk, request_id)
                result = LineResult(
                    status=LineStatus.SUCCEEDED,
                    status_code=200,
                    body_json=_json(call.render(answer)),
                    request_id=request_id,
                )
            except _RETRY_LATER as exc:
                await self._release(chunk, line, exc)
                return None
            except Exception as exc:
                if isinstance(exc, BudgetExceeded):
                    spent = exc
                if not isinstance(exc, DomainError):
                    _log.exception("batch line failed", extra={"batch_id": str(chunk.batch.id)})
                failure = codec.failure(exc)
                result = LineResult(
                    status=LineStatus.FAILED,
                    status_code=failure.status_code,
                    body_json=_json(failure.body),
                    request_id=request_id,
                )
        await self._store(chunk, line, result)
        return spent

    async def _store(self, chunk: _Chunk, line: BatchLine, result: LineResult) -> None:
        """Writes the line's result if its claim still holds it. While the database is away, tries again until the
        claim's lease ends: after that the line is someone else's to run (its answer stays billed: usage records are
        durable on their own path)."""
        wait = self._limits.poll_seconds
        while True:
            try:
                async with self._uow() as uow:
                    if await uow.batches.finish_line(line.id, chunk.claim_id, result, self._clock.now()):
                        await uow.commit()
                return
            except ServiceUnavailable:
                if self._clock.now() + timedelta(seconds=wait) >= chunk.until:
                    _log.warning("batch line result not stored: the database was away", extra={"line": line.custom_id})
                    return
                await asyncio.sleep(wait)
                wait = min(wait * 2, OUTAGE_WAIT_MAX_SECONDS)

    async def _call(self, call: LineCall, chunk: _Chunk, request_id: str) -> LineAnswer:
        context = CallContext(principal=chunk.principal, request_id=request_id, batch_id=chunk.batch.id)
        if call.embedding is not None:
            return await self._model_call.embed(call.embedding, context)
        if call.response is not None:
            line = call.response
            command = ResponseCommand(
                principal=chunk.principal,
                request=line.request,
                instructions=line.instructions,
                previous_response_id=line.previous_response_id,
                store=line.store,
                settings_json=line.settings_json,
                request_id=request_id,
            )
            prepared = await prepare_response(self._uow, command, now=self._clock.now())
            answer = await self._model_call.complete(
                prepared.request, replace(prepared.context, batch_id=chunk.batch.id)
            )
            prepared.record.finish(answer.completion, at=self._clock.now())
            if command.store:
                await store_response(self._uow, prepared.record)
            return prepared.record
        assert call.completion is not None
        return (await self._model_call.complete(call.completion, context)).completion

    async def _release(self, chunk: _Chunk, line: BatchLine, error: DomainError) -> None:
        wait = getattr(error, "retry_after_seconds", None) or RETRY_LATER_SECONDS
        until = self._clock.now() + timedelta(seconds=max(wait, RETRY_LATER_SECONDS))
        with contextlib.suppress(ServiceUnavailable):  # the database away: the line comes back when its lease ends
            async with self._uow() as uow:
                await uow.batches.release_line(line.id, chunk.claim_id, until=until)
                await uow.commit()

    async def _close_for_budget(self, batch: Batch, error: BudgetExceeded) -> None:
        """A spent budget stays spent this month: the lines not run fail with the API's quota error, and the batch
        ends once its running lines are done."""
        async with self._uow() as uow:
            current = await uow.batches.get(batch.id, lock=True, counts=False)
            await self._close_open(uow.batches, current, error, self._clock.now())
            await uow.commit()


def _json(body: Mapping[str, object]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

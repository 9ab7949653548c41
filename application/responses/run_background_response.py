"""The job of a background response: its model call, made off the request, through the one model-call pipeline.

The state lives in the response's row, so a job run twice changes nothing the second time:

- a **queued** response is claimed by one atomic conditional update (``queued`` → ``in_progress``): of two runs of
  the same job, one claims it and the other finds it in progress;
- while it runs, the runner beats ``heartbeat_at`` every ``heartbeat_seconds`` (with the text so far), by a
  conditional update that fails once the caller cancelled it: the runner then closes the model call (settled as
  cancelled by the pipeline) and keeps what it had produced;
- found **in progress** by another run, it belongs to a live runner (a fresh heartbeat: this run waits until it ends
  or its heartbeat goes stale) or to a dead one (a worker killed mid-call, whose job the queue runs again): then it is
  marked **failed**, never run again, because its model call may already have been made and billed: a background
  response is answered at most once. The caller may create it again;
- **finished** or **cancelled**, or deleted: nothing to do.

Admission, budgets, rate limits, fallbacks, usage and settlement are the pipeline's (``ModelCall.stream``), with the
caller as they are now: a user deactivated or an API key revoked since the request fails the response instead.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta

from application.llm.call_stream import CallStream
from application.llm.model_call import ModelCall
from application.responses.prepare import update_if
from application.streams import run_to_end
from application.unit_of_work import UnitOfWorkFactory
from application.usage.context import CachePolicy, CallContext
from domain.auth.model import Principal, Scope
from domain.jobs.model import Job
from domain.llm.model import Completion, StreamEnd, TextDelta
from domain.responses.model import BackgroundCall, ResponseRecord, ResponseStatus
from domain.shared.clock import Clock
from domain.shared.errors import DomainError, Forbidden
from domain.usage.model import Limits

RUN_BACKGROUND_RESPONSE = "responses.run_background"
INTERRUPTED = "The server running this response stopped before it finished; create it again."
CALLER_GONE = "The account or API key that created this response can no longer use the API."


def run_job(response_id: uuid.UUID) -> Job:
    return Job(task=RUN_BACKGROUND_RESPONSE, args={"response_id": str(response_id)})


class RunBackgroundResponse:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        model_call: ModelCall,
        clock: Clock,
        heartbeat_seconds: float = 1.0,
        lease_seconds: float = 30.0,
    ) -> None:
        self._uow = uow
        self._model_call = model_call
        self._clock = clock
        self._heartbeat = heartbeat_seconds
        self._lease = timedelta(seconds=lease_seconds)

    async def execute(self, response_id: uuid.UUID) -> None:
        record = await self._claim(response_id)
        if record is not None and record.call is not None:
            await self._run(record, record.call)

    async def _claim(self, response_id: uuid.UUID) -> ResponseRecord | None:
        """The response, now this run's to answer; ``None`` when there is nothing for it to do."""
        while True:
            async with self._uow() as uow:
                record = await uow.responses.find(response_id)
            if record is None or record.status.finished:
                return None
            now = self._clock.now()
            if record.status is ResponseStatus.QUEUED:
                record.status, record.heartbeat_at = ResponseStatus.IN_PROGRESS, now
                if await update_if(self._uow, record, ResponseStatus.QUEUED):
                    return record
                continue  # cancelled, or claimed by another run, meanwhile
            if record.abandoned(now, self._lease):
                record.fail(code="server_error", message=INTERRUPTED, partial=None, at=now)
                await update_if(self._uow, record, ResponseStatus.IN_PROGRESS)
                return None
            await asyncio.sleep(self._heartbeat)  # a live runner has it: wait for its end or its silence

    async def _run(self, record: ResponseRecord, call: BackgroundCall) -> None:
        """The call runs in a task of its own, opening included (a first token may take minutes), while this one
        beats the heartbeat and watches for a cancel."""
        progress = _Progress()
        consume = asyncio.ensure_future(self._call(record, call, progress))
        try:
            while not await _ended(consume, self._heartbeat):
                if not await self._beat(record, "".join(progress.text)):  # cancelled by its caller
                    consume.cancel()
                    await asyncio.wait({consume})
                    break
            await self._end(record, progress, consume)
        except asyncio.CancelledError:  # the worker is stopping past its grace period
            consume.cancel()
            await asyncio.wait({consume})
            if progress.stream is not None:
                await progress.stream.aclose(asyncio.CancelledError())
            partial = None if progress.stream is None else progress.stream.result
            record.fail(code="server_error", message=INTERRUPTED, partial=partial, at=self._clock.now())
            await run_to_end(self._keep(record))
            raise
        finally:
            if progress.stream is not None:
                await progress.stream.aclose()

    async def _call(self, record: ResponseRecord, call: BackgroundCall, progress: _Progress) -> Completion:
        principal = await self._principal(record, call)
        context = CallContext(principal=principal, request_id=call.request_id, cache=CachePolicy(call.cache))
        request = replace(call.request, messages=record.messages())
        progress.stream = await self._model_call.stream(request, context)
        async for event in progress.stream:
            if isinstance(event, TextDelta):
                progress.text.append(event.text)
            elif isinstance(event, StreamEnd):
                return event.completion
        raise RuntimeError("the model call's stream ended without its last event")

    async def _end(self, record: ResponseRecord, progress: _Progress, consume: asyncio.Future[Completion]) -> None:
        now = self._clock.now()
        stream = progress.stream
        if consume.cancelled():
            if stream is not None:
                await stream.aclose()  # settled as cancelled, with what was produced
            record.cancel(partial=None if stream is None else stream.result, at=now)
        elif isinstance(error := consume.exception(), DomainError):  # refused, or the upstream failed: settled
            record.fail(
                code=error.code, message=error.detail, partial=None if stream is None else stream.result, at=now
            )
        elif error is not None:
            raise error
        else:
            record.finish(consume.result(), at=now)
        await run_to_end(self._keep(record))

    async def _beat(self, record: ResponseRecord, text: str) -> bool:
        """Still wanted (not cancelled, not deleted): the heartbeat and the text so far are stored."""
        record.output_text = text
        record.mark()
        beat = replace(record, heartbeat_at=self._clock.now())
        return await update_if(self._uow, beat, ResponseStatus.IN_PROGRESS)

    async def _keep(self, record: ResponseRecord) -> None:
        """The response as it ended; cancelled meanwhile by its caller, it stays cancelled with what was produced."""
        record.call, record.heartbeat_at = None, self._clock.now()
        record.mark()
        if record.status is not ResponseStatus.CANCELLED and await update_if(
            self._uow, record, ResponseStatus.IN_PROGRESS
        ):
            return
        record.status, record.error_code, record.error_message = ResponseStatus.CANCELLED, None, None
        await update_if(self._uow, record, ResponseStatus.CANCELLED)

    async def _principal(self, record: ResponseRecord, call: BackgroundCall) -> Principal:
        """The caller as they are now: what they may do and their limits, read again as a request would."""
        now = self._clock.now()
        async with self._uow() as uow:
            user = await uow.users.find(record.owner_id)
            key = None if call.api_key_id is None else await uow.api_keys.find(call.api_key_id)
        key_gone = call.api_key_id is not None and (key is None or not key.is_usable(now))
        if user is None or not user.is_active or key_gone:
            raise Forbidden(CALLER_GONE)
        allowed = Scope.for_role(user.role)
        return Principal(
            user_id=user.id,
            role=user.role,
            scopes=allowed if key is None else key.scopes & allowed,
            api_key_id=None if key is None else key.id,
            user_limits=user.limits,
            key_limits=Limits() if key is None else key.limits,
        )


@dataclass
class _Progress:
    """How far the call got: its stream once opened, and the text so far."""

    stream: CallStream | None = None
    text: list[str] = field(default_factory=list)


async def _ended(task: asyncio.Future[Completion], seconds: float) -> bool:
    await asyncio.wait({task}, timeout=seconds)
    return task.done()

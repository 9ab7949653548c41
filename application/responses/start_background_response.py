"""A background response (``background: true``): stored ``queued`` with the call it is to make, and a job to make it,
in one commit; the job (``RunBackgroundResponse``) answers it off the request. The caller polls it, streams it or
cancels it by its id."""

from __future__ import annotations

from dataclasses import replace

from application.llm.model_call import ModelCall
from application.responses.prepare import ResponseCommand, prepare_response
from application.responses.run_background_response import run_job
from application.unit_of_work import UnitOfWorkFactory
from domain.responses.model import BackgroundCall, ResponseRecord, ResponseStatus
from domain.shared.clock import Clock
from domain.shared.errors import RuleViolation

NEEDS_STORE = "background: a background response must be stored; leave store true"
# The file search runs before the model call, in the request (``application.responses.file_search``); a background
# run would make the call without it, so the two together are refused rather than answered ungrounded.
NO_FILE_SEARCH = "background: a background response cannot use the file_search tool; leave background false"


class StartBackgroundResponse:
    def __init__(self, *, uow: UnitOfWorkFactory, model_call: ModelCall, clock: Clock) -> None:
        self._uow = uow
        self._model_call = model_call
        self._clock = clock

    async def execute(self, command: ResponseCommand) -> ResponseRecord:
        if not command.store:
            raise RuleViolation(NEEDS_STORE)
        if command.file_search is not None:
            raise RuleViolation(NO_FILE_SEARCH)
        prepared = await prepare_response(self._uow, command, now=self._clock.now())
        self._model_call.check(prepared.request)  # what would be refused now is refused now, not in the job
        record = prepared.record
        record.status, record.background = ResponseStatus.QUEUED, True
        record.call = BackgroundCall(
            request=replace(command.request, messages=()),
            api_key_id=command.principal.api_key_id,
            request_id=command.request_id,
            cache=command.cache.value,
        )
        async with self._uow() as work:
            await work.responses.add(record)
            await work.jobs.enqueue(run_job(record.id))
            await work.commit()
        return record

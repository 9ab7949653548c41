"""A response of the Responses API, answered whole and stored when asked to (``store``, the default)."""

from __future__ import annotations

from application.llm.model_call import ModelCall
from application.responses.file_search import ground_response
from application.responses.prepare import ResponseCommand, prepare_response, store_response
from application.unit_of_work import UnitOfWorkFactory
from application.vectors.file_search import FileSearchRetrieval
from domain.responses.model import ResponseRecord
from domain.shared.clock import Clock


class CreateResponse:
    """One model call through the model-call service; a call that fails before answering stores nothing."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        model_call: ModelCall,
        clock: Clock,
        retrieval: FileSearchRetrieval | None = None,
    ) -> None:
        self._uow = uow
        self._model_call = model_call
        self._clock = clock
        self._retrieval = retrieval

    async def execute(self, command: ResponseCommand) -> ResponseRecord:
        prepared = await prepare_response(self._uow, command, now=self._clock.now())
        prepared = await ground_response(self._retrieval, prepared, command)
        answer = await self._model_call.complete(prepared.request, prepared.context)
        record = prepared.record
        record.finish(answer.completion, at=self._clock.now())
        if command.store:
            await store_response(self._uow, record)
        return record

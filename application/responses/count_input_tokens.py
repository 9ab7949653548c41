"""``POST /v1/responses/input_tokens``: the input tokens a response would cost, its previous response included."""

from __future__ import annotations

from application.llm.model_call import ModelCall
from application.responses.prepare import ResponseCommand, prepare_response
from application.unit_of_work import UnitOfWorkFactory
from domain.shared.clock import Clock


class CountInputTokens:
    def __init__(self, *, uow: UnitOfWorkFactory, model_call: ModelCall, clock: Clock) -> None:
        self._uow = uow
        self._model_call = model_call
        self._clock = clock

    async def execute(self, command: ResponseCommand) -> int:
        prepared = await prepare_response(self._uow, command, now=self._clock.now())
        return await self._model_call.count_input_tokens(prepared.request)

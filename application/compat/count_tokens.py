"""Anthropic's ``POST /v1/messages/count_tokens``: the input tokens a message would cost (the serving provider's count
where it has one, else the gateway's estimate)."""

from __future__ import annotations

from application.auth.access import require_scope
from application.llm.model_call import ModelCall
from domain.auth.model import Principal, Scope
from domain.llm.model import CompletionRequest


class CountTokens:
    def __init__(self, *, model_call: ModelCall) -> None:
        self._model_call = model_call

    async def execute(self, principal: Principal, request: CompletionRequest) -> int:
        require_scope(principal, Scope.CHAT)
        return await self._model_call.count_input_tokens(request)

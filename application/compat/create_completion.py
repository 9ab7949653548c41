"""A stateless chat completion, as the OpenAI- and Anthropic-compatible endpoints ask for one."""

from __future__ import annotations

from dataclasses import dataclass

from application.auth.access import require_scope
from application.llm.model_call import Answer, ModelCall
from application.usage.context import CachePolicy, CallContext
from domain.auth.model import Principal, Scope
from domain.llm.model import CompletionRequest


@dataclass(frozen=True)
class CompletionCommand:
    principal: Principal
    request: CompletionRequest
    request_id: str = "-"
    cache: CachePolicy = CachePolicy.DEFAULT

    def context(self) -> CallContext:
        require_scope(self.principal, Scope.CHAT)
        return CallContext(principal=self.principal, request_id=self.request_id, cache=self.cache)


class CreateCompletion:
    """One completion through the model-call service (usage, budgets, limits, cache, fallbacks); nothing stored."""

    def __init__(self, *, model_call: ModelCall) -> None:
        self._model_call = model_call

    async def execute(self, command: CompletionCommand) -> Answer:
        return await self._model_call.complete(command.request, command.context())

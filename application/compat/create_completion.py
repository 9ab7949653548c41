"""A stateless chat completion, as the OpenAI- and Anthropic-compatible endpoints ask for one."""

from __future__ import annotations

from dataclasses import dataclass

from application.auth.access import require_scope
from application.llm.gateway import CachePolicy, CallContext, LLMGateway
from domain.auth.model import Principal, Scope
from domain.llm.errors import ModelNotFound
from domain.llm.model import Completion, CompletionRequest, ModelKind, check_completion_request
from domain.llm.ports import ModelCatalog


@dataclass(frozen=True)
class CompletionCommand:
    principal: Principal
    request: CompletionRequest
    request_id: str = "-"
    cache: CachePolicy = CachePolicy.DEFAULT


def prepare_completion(catalog: ModelCatalog, command: CompletionCommand) -> CallContext:
    """Checks the caller may chat, the model is a chat model and the request keeps the rules."""
    require_scope(command.principal, Scope.CHAT)
    model = command.request.model
    spec = catalog.find(model)
    if spec is None:
        raise ModelNotFound(f"model '{model}' does not exist")
    if spec.kind is not ModelKind.CHAT:
        raise ModelNotFound(f"model '{model}' is an {spec.kind} model, not a chat model")
    check_completion_request(command.request)
    return CallContext(principal=command.principal, request_id=command.request_id, cache=command.cache)


class CreateCompletion:
    """One completion through the gateway (so usage, budgets, limits, cache and fallbacks apply); nothing stored."""

    def __init__(self, *, gateway: LLMGateway, catalog: ModelCatalog) -> None:
        self._gateway = gateway
        self._catalog = catalog

    async def execute(self, command: CompletionCommand) -> Completion:
        context = prepare_completion(self._catalog, command)
        return await self._gateway.complete(command.request, context)

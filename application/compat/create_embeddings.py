"""Texts turned into vectors by an embedding model of the catalog."""

from __future__ import annotations

from dataclasses import dataclass

from application.auth.access import require_scope
from application.llm.model_call import ModelCall
from application.usage.context import CallContext
from domain.auth.model import Principal, Scope
from domain.llm.model import EmbeddingRequest, Embeddings


@dataclass(frozen=True)
class EmbeddingsCommand:
    principal: Principal
    request: EmbeddingRequest
    request_id: str = "-"


class CreateEmbeddings:
    def __init__(self, *, model_call: ModelCall) -> None:
        self._model_call = model_call

    async def execute(self, command: EmbeddingsCommand) -> Embeddings:
        require_scope(command.principal, Scope.CHAT)
        context = CallContext(principal=command.principal, request_id=command.request_id)
        return await self._model_call.embed(command.request, context)

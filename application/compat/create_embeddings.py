"""Texts turned into vectors by an embedding model of the catalog."""

from __future__ import annotations

from dataclasses import dataclass

from application.auth.access import require_scope
from application.llm.gateway import CallContext, LLMGateway
from domain.auth.model import Principal, Scope
from domain.llm.errors import ModelNotFound
from domain.llm.model import EmbeddingRequest, Embeddings, ModelKind, check_embedding_request
from domain.llm.ports import ModelCatalog


@dataclass(frozen=True)
class EmbeddingsCommand:
    principal: Principal
    request: EmbeddingRequest
    request_id: str = "-"


class CreateEmbeddings:
    def __init__(self, *, gateway: LLMGateway, catalog: ModelCatalog) -> None:
        self._gateway = gateway
        self._catalog = catalog

    async def execute(self, command: EmbeddingsCommand) -> Embeddings:
        require_scope(command.principal, Scope.CHAT)
        model = command.request.model
        spec = self._catalog.find(model)
        if spec is None:
            raise ModelNotFound(f"model '{model}' does not exist")
        if spec.kind is not ModelKind.EMBEDDING:
            raise ModelNotFound(f"model '{model}' is a {spec.kind} model, not an embedding model")
        check_embedding_request(command.request)
        context = CallContext(principal=command.principal, request_id=command.request_id)
        return await self._gateway.embed(command.request, context)

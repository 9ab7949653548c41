"""Routes a request for a public model name to the deployment that serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import replace

from domain.llm.model import Completion, CompletionRequest, StreamEvent
from domain.llm.ports import LLMProvider, ModelCatalog
from domain.shared.errors import NotFound


class ModelRouter(LLMProvider):
    """The ``LLMProvider`` the use cases see: it looks the public model up and hands the call to its deployment."""

    def __init__(self, catalog: ModelCatalog, deployments: Mapping[str, LLMProvider]) -> None:
        self._catalog = catalog
        self._deployments = dict(deployments)

    @property
    def catalog(self) -> ModelCatalog:
        return self._catalog

    def _deployment(self, request: CompletionRequest) -> tuple[LLMProvider, CompletionRequest]:
        spec = self._catalog.find(request.model)
        if spec is None or spec.name not in self._deployments:
            raise NotFound(f"model '{request.model}' does not exist")
        capped = request.max_tokens if request.max_tokens is not None else spec.max_output_tokens
        return self._deployments[spec.name], replace(request, max_tokens=min(capped, spec.max_output_tokens))

    async def complete(self, request: CompletionRequest) -> Completion:
        provider, routed = self._deployment(request)
        return await provider.complete(routed)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        provider, routed = self._deployment(request)
        async for event in provider.stream(routed):
            yield event

"""The one path every model call takes, whichever endpoint asked for it.

Conversations and the provider-compatible endpoints both call the model through ``LLMGateway``, so whatever
applies to a model call (accounting, budgets, limits, caching) is written once, here, around the provider port.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from domain.auth.model import Principal
from domain.llm.model import Completion, CompletionRequest, EmbeddingRequest, Embeddings, StreamEvent
from domain.llm.ports import EmbeddingProvider, LLMProvider
from domain.shared.errors import UpstreamUnavailable


class CachePolicy(enum.StrEnum):
    DEFAULT = "default"  # cache deterministic requests (temperature 0) only
    PREFER = "prefer"  # the client opted in: cache whatever the temperature
    BYPASS = "bypass"  # the client opted out (Cache-Control: no-store)


@dataclass(frozen=True, kw_only=True)
class CallContext:
    """Who is calling the model, and on whose behalf, for accounting and policy."""

    principal: Principal
    request_id: str
    conversation_id: uuid.UUID | None = None
    cache: CachePolicy = CachePolicy.DEFAULT


class LLMGateway:
    def __init__(self, *, provider: LLMProvider, embedder: EmbeddingProvider | None = None) -> None:
        self._provider = provider
        self._embedder = embedder

    async def complete(self, request: CompletionRequest, context: CallContext) -> Completion:
        return await self._provider.complete(request)

    async def stream(self, request: CompletionRequest, context: CallContext) -> AsyncIterator[StreamEvent]:
        """Yields the provider's events. Closing this generator early closes the upstream call."""
        upstream = self._provider.stream(request)
        try:
            async for event in upstream:
                yield event
        finally:
            aclose = getattr(upstream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def embed(self, request: EmbeddingRequest, context: CallContext) -> Embeddings:
        if self._embedder is None:
            raise UpstreamUnavailable("no embedding provider is configured", model=request.model)
        return await self._embedder.embed(request)

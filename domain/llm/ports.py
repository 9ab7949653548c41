"""The LLM-provider port, the embedding-provider port, the model catalog port, and ``ModelBackend``: every model of
the catalog behind one door (what the application's model-call service calls)."""

from __future__ import annotations

import abc
import builtins
from collections.abc import AsyncGenerator

from domain.llm.model import Completion, CompletionRequest, EmbeddingRequest, Embeddings, ModelSpec, StreamEvent
from domain.llm.stream import ModelStream


class LLMProvider(abc.ABC):
    """Answers chat completions. Failures are ``UpstreamError`` subclasses, never SDK exceptions.

    ``stream`` yields ``TextDelta`` and ``ToolCallDelta`` events as they arrive and exactly one ``StreamEnd`` last.
    It is an async generator: closing it (``aclose``) cancels the upstream call and releases its response.
    """

    @abc.abstractmethod
    async def complete(self, request: CompletionRequest) -> Completion: ...

    @abc.abstractmethod
    def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]: ...

    async def count_tokens(self, request: CompletionRequest) -> int | None:
        """The provider's own count of the request's input tokens, where it has an endpoint for it; ``None`` where it
        has none (the gateway then estimates)."""
        return None


class EmbeddingProvider(abc.ABC):
    """Turns texts into vectors. Failures are ``UpstreamError`` subclasses, never SDK exceptions."""

    @abc.abstractmethod
    async def embed(self, request: EmbeddingRequest) -> Embeddings: ...

    async def count_tokens(self, request: CompletionRequest) -> int | None:
        """The serving provider's own count of the request's input tokens, or ``None`` when it has none or could
        not give one (the gateway then estimates)."""
        return None


class ModelCatalog(abc.ABC):
    """The operator's list of public models."""

    @abc.abstractmethod
    def list(self) -> list[ModelSpec]: ...

    @abc.abstractmethod
    def find(self, name: str) -> ModelSpec | None: ...

    @property
    @abc.abstractmethod
    def default_model(self) -> str: ...

    def chain(self, name: str) -> builtins.list[ModelSpec]:
        """The model ``name``, then its fallbacks, breadth first in the catalog's order, each once (empty when there
        is no such model)."""
        spec = self.find(name)
        if spec is None:
            return []
        chain: builtins.list[ModelSpec] = []
        queue, seen = [spec], {spec.name}
        while queue:
            current = queue.pop(0)
            chain.append(current)
            for fallback_name in current.fallbacks:
                fallback = self.find(fallback_name)
                if fallback is not None and fallback.name not in seen:
                    seen.add(fallback.name)
                    queue.append(fallback)
        return chain


class ModelBackend(abc.ABC):
    """Every model of the catalog behind one door: deployments chosen (A/B), retried, fallen back from, observed.

    ``open_stream`` returns once the stream's first event has arrived (failures until then are raised, after retries
    and fallbacks), and the stream knows which deployment serves it.
    """

    @abc.abstractmethod
    async def complete(self, request: CompletionRequest) -> Completion: ...

    @abc.abstractmethod
    async def open_stream(self, request: CompletionRequest) -> ModelStream: ...

    @abc.abstractmethod
    async def embed(self, request: EmbeddingRequest) -> Embeddings: ...

    async def count_tokens(self, request: CompletionRequest) -> int | None:
        """The serving provider's own count of the request's input tokens, or ``None`` when it has none or could
        not give one (the gateway then estimates)."""
        return None

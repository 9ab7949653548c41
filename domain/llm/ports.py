"""The LLM-provider port, the embedding-provider port and the model catalog port."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator

from domain.llm.model import Completion, CompletionRequest, EmbeddingRequest, Embeddings, ModelSpec, StreamEvent


class LLMProvider(abc.ABC):
    """Answers chat completions. Failures are ``UpstreamError`` subclasses, never SDK exceptions.

    ``stream`` yields ``TextDelta`` and ``ToolCallDelta`` events as they arrive and exactly one ``StreamEnd`` last.
    When the consumer stops iterating (the client went away), closing the generator cancels the upstream call.
    """

    @abc.abstractmethod
    async def complete(self, request: CompletionRequest) -> Completion: ...

    @abc.abstractmethod
    def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]: ...


class EmbeddingProvider(abc.ABC):
    """Turns texts into vectors. Failures are ``UpstreamError`` subclasses, never SDK exceptions."""

    @abc.abstractmethod
    async def embed(self, request: EmbeddingRequest) -> Embeddings: ...


class ModelCatalog(abc.ABC):
    """The operator's list of public models."""

    @abc.abstractmethod
    def list(self) -> list[ModelSpec]: ...

    @abc.abstractmethod
    def find(self, name: str) -> ModelSpec | None: ...

    @property
    @abc.abstractmethod
    def default_model(self) -> str: ...

"""The LLM-provider port, the embedding-provider port, the model catalog port, and ``ModelBackend``: every model of
the catalog behind one door (what the application's model-call service calls)."""

from __future__ import annotations

import abc
import builtins
import uuid
from collections.abc import AsyncGenerator

from domain.credentials.errors import ProviderNotSupported
from domain.llm.model import Completion, CompletionRequest, EmbeddingRequest, Embeddings, ModelSpec, UpstreamEvent
from domain.llm.stream import ModelStream


class LLMProvider(abc.ABC):
    """Answers chat completions. Failures are ``UpstreamError`` subclasses, never SDK exceptions.

    ``stream`` yields ``StreamOpened`` as soon as the upstream's first event has been read (before any text), then
    ``TextDelta`` and ``ToolCallDelta`` events as they arrive and exactly one ``StreamEnd`` last.
    It is an async generator: closing it (``aclose``) cancels the upstream call and releases its response.
    """

    @abc.abstractmethod
    async def complete(self, request: CompletionRequest) -> Completion: ...

    @abc.abstractmethod
    def stream(self, request: CompletionRequest) -> AsyncGenerator[UpstreamEvent, None]: ...

    @property
    def accepts_user_keys(self) -> bool:
        """Whether ``with_credential`` gives a provider (so the router looks a caller's key up for it)."""
        return False

    def with_credential(self, secret: str) -> LLMProvider | None:
        """This deployment called with a user's own key instead of the operator's (sharing its connections), or
        ``None`` when it cannot take one (a keyless or self-hosted server, cloud credentials, an SDK client)."""
        return None

    async def verify_credential(self, secret: str) -> None:
        """One cheap authenticated call with ``secret`` (a model list): ``ProviderKeyRejected`` when the provider
        refuses it, an ``UpstreamError`` when it cannot say. Only called where ``with_credential`` gives a provider."""
        raise ProviderNotSupported("this deployment takes no key of a user")

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

    ``caller`` is the user the call is made for: a deployment whose provider that user brought a key for is called
    with their key (``ServedBy.key_owner`` says so), every other with the operator's.
    """

    @abc.abstractmethod
    async def complete(self, request: CompletionRequest, *, caller: uuid.UUID | None = None) -> Completion: ...

    @abc.abstractmethod
    async def open_stream(self, request: CompletionRequest, *, caller: uuid.UUID | None = None) -> ModelStream: ...

    @abc.abstractmethod
    async def embed(self, request: EmbeddingRequest, *, caller: uuid.UUID | None = None) -> Embeddings: ...

    async def count_tokens(self, request: CompletionRequest) -> int | None:
        """The serving provider's own count of the request's input tokens, or ``None`` when it has none or could
        not give one (the gateway then estimates)."""
        return None

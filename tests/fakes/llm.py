from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator

from domain.llm.model import (
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    Embeddings,
    FinishReason,
    ServedBy,
    StreamEnd,
    StreamOpened,
    TextDelta,
    TokenUsage,
    UpstreamEvent,
)
from domain.llm.ports import EmbeddingProvider, LLMProvider, ModelBackend
from domain.llm.stream import ModelStream
from domain.shared.errors import UpstreamError


class ScriptedProvider(LLMProvider):
    """Opens at once, then answers with the given pieces (the first ``think`` seconds after opening); optionally
    fails after ``fail_after`` of them (0: fails to open). Records how many pieces it sent and whether it was closed."""

    def __init__(
        self,
        pieces: list[str],
        *,
        fail_after: int | None = None,
        error: UpstreamError | None = None,
        think: float = 0.0,
    ) -> None:
        self.pieces = pieces
        self.fail_after = fail_after
        self.error = error or UpstreamError("upstream broke")
        self.think = think
        self.closed = False
        self.calls = 0
        self.sent = 0

    def _completion(self, text: str) -> Completion:
        served = ServedBy(model="scripted", provider="test", upstream_model="scripted-1")
        usage = TokenUsage(input_tokens=3, output_tokens=len(self.pieces))
        return Completion(content=text, finish_reason=FinishReason.STOP, usage=usage, served_by=served)

    async def complete(self, request: CompletionRequest) -> Completion:
        self.calls += 1
        if self.fail_after is not None:
            raise self.error
        return self._completion("".join(self.pieces))

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[UpstreamEvent, None]:
        self.calls += 1
        try:
            if self.fail_after == 0:
                raise self.error  # before the upstream answered: the stream never opens
            yield StreamOpened()
            if self.think:
                await asyncio.sleep(self.think)
            for index, piece in enumerate(self.pieces):
                if self.fail_after is not None and index == self.fail_after:
                    raise self.error
                self.sent += 1
                yield TextDelta(piece)
            yield StreamEnd(self._completion("".join(self.pieces)))
        finally:
            self.closed = True


class OneModel(ModelBackend):
    """Every model answered by one provider (and embedder), with no routing: what a use case's test needs of the
    backend. Its streams say they are served by ``served_by`` (by default: the model asked for, provider "test")."""

    def __init__(
        self,
        provider: LLMProvider,
        *,
        embedder: EmbeddingProvider | None = None,
        served_by: ServedBy | None = None,
    ) -> None:
        self.provider = provider
        self.embedder = embedder
        self.served_by = served_by

    async def complete(self, request: CompletionRequest, *, caller: uuid.UUID | None = None) -> Completion:
        return await self.provider.complete(request)

    async def open_stream(self, request: CompletionRequest, *, caller: uuid.UUID | None = None) -> ModelStream:
        served = self.served_by or ServedBy(model=request.model, provider="test", upstream_model=request.model)
        return await ModelStream.open(self.provider.stream(request), served)

    async def embed(self, request: EmbeddingRequest, *, caller: uuid.UUID | None = None) -> Embeddings:
        assert self.embedder is not None, "this backend has no embedder"
        return await self.embedder.embed(request)

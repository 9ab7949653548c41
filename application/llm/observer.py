"""What the model-call service reports as calls open and end, for logs and metrics; does nothing unless the
composition root gives a subclass (``infrastructure.observability.llm.CallTelemetry``)."""

from __future__ import annotations

from application.usage.metering import Outcome
from domain.llm.model import CompletionRequest, EmbeddingRequest, Embeddings, ServedBy


class CallObserver:
    def first_token(self, request: CompletionRequest, served_by: ServedBy, seconds: float) -> None:
        """A stream's first output (text, a tool call, or its end) arrived, ``seconds`` after the call was admitted,
        from ``served_by`` (not its opening, which comes earlier)."""

    def finished(self, request: CompletionRequest, outcome: Outcome, seconds: float) -> None:
        """A call (not a cache hit) ended, however: done, failed, cut short, abandoned."""

    def embedded(
        self, request: EmbeddingRequest, embeddings: Embeddings | None, error: BaseException | None, seconds: float
    ) -> None:
        """An embeddings call ended, with its vectors or its error."""


NO_OBSERVER = CallObserver()

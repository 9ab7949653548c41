"""What a batch line is to the application: a request body for one endpoint, parsed by that endpoint's codec.

Front doors own their wire formats, so each endpoint's codec (``LineCodec``) lives beside its front door in
``interfaces`` and is handed to the use cases by the container: it turns a line's body into the domain request the
model-call pipeline runs, renders the answer as the endpoint would, and renders a failure in the API's error shape.
Adding an endpoint to batches is adding a codec; the batch machinery does not change.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.batches.model import BatchLine
from domain.llm.model import Completion, CompletionRequest, EmbeddingRequest, Embeddings
from domain.responses.model import ResponseRecord

LineAnswer = Completion | Embeddings | ResponseRecord


@dataclass(frozen=True, kw_only=True)
class ResponseLine:
    """A Responses API request: its own input and settings, and what the use case adds (see ``ResponseCommand``)."""

    request: CompletionRequest
    instructions: str | None = None
    previous_response_id: uuid.UUID | None = None
    store: bool = True
    settings_json: str = "{}"


@dataclass(frozen=True, kw_only=True)
class LineCall:
    """One parsed line: exactly one of a completion, an embedding or a response (Responses API) request, and how to
    render its answer (the endpoint's JSON body)."""

    completion: CompletionRequest | None = None
    embedding: EmbeddingRequest | None = None
    response: ResponseLine | None = None
    render: Callable[[LineAnswer], Mapping[str, Any]]


@dataclass(frozen=True)
class LineResponse:
    """An endpoint's HTTP answer to a line: status code and JSON body."""

    status_code: int
    body: Mapping[str, Any]


class LineCodec(abc.ABC):
    """One endpoint's batch lines (``/v1/chat/completions``, ``/v1/embeddings``, ...)."""

    @abc.abstractmethod
    def parse(self, body: Mapping[str, Any]) -> LineCall:
        """Raises ``RuleViolation`` naming the field when the body is not a valid request of this endpoint."""

    @abc.abstractmethod
    def failure(self, error: BaseException) -> LineResponse:
        """A failed call in the API's error shape, with the status code the endpoint would have answered."""


class ResultFormat(abc.ABC):
    """How one kind of batch renders a line's result in its output files (the OpenAI batch line format)."""

    @abc.abstractmethod
    def render(self, line: BatchLine) -> bytes:
        """One line of the output (or error) file, newline included."""


LineCodecs = Mapping[str, LineCodec]

"""Batch lines of the OpenAI endpoints: each endpoint's body parsed by its front door's own schema and answered in
its own shape (the ``LineCodec`` s the batch use cases run), and the OpenAI batch output line format.

A line is what the endpoint would have answered to the same body, whole (``stream`` is refused: a batch line has
no one to stream to); a failure is the endpoint's error body with the status code it would have had.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from application.batches.lines import LineAnswer, LineCall, LineCodec, LineResponse, ResponseLine, ResultFormat
from domain.batches.model import BatchLine
from domain.llm.errors import ModelNotFound
from domain.llm.model import Completion, Embeddings
from domain.responses.model import ResponseRecord
from domain.shared.errors import DomainError, RuleViolation
from interfaces.http.compat import legacy_completions as legacy
from interfaces.http.compat.errors import Dialect, domain_error_fields, error_body
from interfaces.http.compat.legacy_completions import LegacyCompletionRequest
from interfaces.http.compat.openai_schemas import ChatCompletionRequest, EmbeddingsRequest
from interfaces.http.compat.openai_wire import completion_body, embeddings_body
from interfaces.http.compat.responses_schemas import CreateResponseRequest
from interfaces.http.compat.responses_wire import response_body

M = TypeVar("M", bound=BaseModel)
CHAT, EMBEDDINGS, COMPLETIONS, RESPONSES = "/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/responses"


def _validated(model: type[M], body: Mapping[str, Any]) -> M:
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        worst = max(exc.errors(include_url=False), key=lambda e: len(e.get("loc", ())))
        where = ".".join(str(p) for p in worst.get("loc", ())) or "body"
        raise RuleViolation(f"body.{where}: {worst.get('msg', 'invalid value')}") from None
    if getattr(parsed, "stream", False):
        raise RuleViolation("body.stream: a batch line cannot be streamed; leave it false")
    return parsed


def _completion(answer: LineAnswer) -> Completion:
    assert isinstance(answer, Completion)
    return answer


class OpenAILineCodec(LineCodec):
    """Failures in OpenAI's error shape, as the ``/v1`` endpoints answer them."""

    def failure(self, error: BaseException) -> LineResponse:
        if not isinstance(error, DomainError):
            return LineResponse(500, error_body(Dialect.OPENAI, 500, "an unexpected error occurred", code=None))
        status, message, code, _ = domain_error_fields(error)
        param = "model" if isinstance(error, ModelNotFound) else None
        body = error_body(Dialect.OPENAI, status, message, code=code, param=param)
        return LineResponse(429 if status == 402 else status, body)  # a spent budget is OpenAI's 429


class ChatCompletionLines(OpenAILineCodec):
    def parse(self, body: Mapping[str, Any]) -> LineCall:
        parsed = _validated(ChatCompletionRequest, body)
        render: Callable[[LineAnswer], Mapping[str, Any]] = lambda answer: completion_body(  # noqa: E731
            _completion(answer), model=parsed.model
        )
        return LineCall(completion=parsed.to_domain(), render=render)


class LegacyCompletionLines(OpenAILineCodec):
    def parse(self, body: Mapping[str, Any]) -> LineCall:
        parsed = _validated(LegacyCompletionRequest, body)
        return LineCall(
            completion=parsed.to_domain(),
            render=lambda answer: legacy.completion_body(_completion(answer), model=parsed.model),
        )


class EmbeddingLines(OpenAILineCodec):
    def parse(self, body: Mapping[str, Any]) -> LineCall:
        parsed = _validated(EmbeddingsRequest, body)

        def render(answer: LineAnswer) -> Mapping[str, Any]:
            assert isinstance(answer, Embeddings)
            return embeddings_body(answer, model=parsed.model, encoding=parsed.encoding_format)

        return LineCall(embedding=parsed.to_domain(), render=render)


class ResponseLines(OpenAILineCodec):
    def parse(self, body: Mapping[str, Any]) -> LineCall:
        parsed = _validated(CreateResponseRequest, body)
        if parsed.background:
            raise RuleViolation("body.background: a batch line already runs in the background; leave it false")

        def render(answer: LineAnswer) -> Mapping[str, Any]:
            assert isinstance(answer, ResponseRecord)
            return response_body(answer)

        line = ResponseLine(
            request=parsed.to_domain(),
            instructions=parsed.instructions,
            previous_response_id=parsed.previous_id(),
            store=parsed.store is not False,
            settings_json=parsed.settings_json(),
        )
        return LineCall(response=line, render=render)


def openai_line_codecs() -> dict[str, LineCodec]:
    return {
        CHAT: ChatCompletionLines(),
        EMBEDDINGS: EmbeddingLines(),
        COMPLETIONS: LegacyCompletionLines(),
        RESPONSES: ResponseLines(),
    }


class OpenAIBatchOutput(ResultFormat):
    """``{id, custom_id, response: {status_code, request_id, body}, error}``, one JSON object per line; a line that
    never ran has no response and an ``error`` (``batch_cancelled``, ``batch_expired``)."""

    def render(self, line: BatchLine) -> bytes:
        response = None
        error = None
        if line.status_code is not None:
            body = orjson.Fragment(line.response_json) if line.response_json else None
            response = {"status_code": line.status_code, "request_id": line.request_id, "body": body}
        else:
            error = {"code": line.error_code, "message": line.error_message}
        item = {"id": line.public_id, "custom_id": line.custom_id, "response": response, "error": error}
        return orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE)

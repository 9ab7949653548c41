"""Anthropic message batch lines: each request's ``params`` parsed as ``POST /v1/messages`` parses its body and
answered in its Message shape (the ``LineCodec`` the batch use cases run), and the results' JSONL line format.

A failure is Anthropic's error body (``{"type": "error", "error": {"type", "message"}}``) with the status code the
endpoint would have had; a spent budget stays Anthropic's 402 ``billing_error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from application.batches.lines import LineAnswer, LineCall, LineCodec, LineResponse, ResultFormat
from domain.batches.model import BatchLine, LineStatus
from domain.llm.model import Completion
from domain.shared.errors import DomainError, RuleViolation
from interfaces.http.compat.anthropic_schemas import CreateMessageRequest
from interfaces.http.compat.anthropic_wire import message_body
from interfaces.http.compat.errors import Dialect, domain_error_fields, error_body, field_location


class MessageBatchParams(CreateMessageRequest):
    """A Messages API request inside a batch: anything ``POST /v1/messages`` takes, except a stream (a batch line
    has no one to stream to)."""

    stream: Literal[False] | None = False


class MessageLines(LineCodec):
    def parse(self, body: Mapping[str, Any]) -> LineCall:
        try:
            parsed = MessageBatchParams.model_validate(body)
        except ValidationError as exc:
            worst = max(exc.errors(include_url=False), key=lambda e: len(e.get("loc", ())))
            raise RuleViolation(f"params.{field_location(tuple(worst.get('loc', ())))}: {worst.get('msg')}") from None

        def render(answer: LineAnswer) -> Mapping[str, Any]:
            assert isinstance(answer, Completion)
            return message_body(answer, model=parsed.model)

        return LineCall(completion=parsed.to_domain(), render=render)

    def failure(self, error: BaseException) -> LineResponse:
        if not isinstance(error, DomainError):
            return _failure(500, "an unexpected error occurred", None)
        status, message, code, _ = domain_error_fields(error)
        return _failure(status, message, code)


def _failure(status: int, message: str, code: str | None) -> LineResponse:
    """No ``request_id``: the line ran in a worker, not in a request of the caller's."""
    return LineResponse(status, {**error_body(Dialect.ANTHROPIC, status, message, code=code), "request_id": None})


class MessageBatchResults(ResultFormat):
    """``{custom_id, result}`` per line, ``result`` one of ``{type: succeeded, message}``, ``{type: errored,
    error}`` (Anthropic's error body), ``{type: canceled}``, ``{type: expired}``."""

    def render(self, line: BatchLine) -> bytes:
        result: dict[str, Any]
        if line.status is LineStatus.SUCCEEDED and line.response_json:
            result = {"type": "succeeded", "message": orjson.Fragment(line.response_json)}
        elif line.status is LineStatus.CANCELLED:
            result = {"type": "canceled"}
        elif line.status is LineStatus.EXPIRED:
            result = {"type": "expired"}
        elif line.response_json:
            result = {"type": "errored", "error": orjson.Fragment(line.response_json)}
        else:  # ended without an answer (not expected of a finished line): an error all the same
            failure = _failure(500, line.error_message or "the request did not complete", None)
            result = {"type": "errored", "error": failure.body}
        return orjson.dumps({"custom_id": line.custom_id, "result": result}, option=orjson.OPT_APPEND_NEWLINE)

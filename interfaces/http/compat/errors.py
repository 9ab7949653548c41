"""Errors under ``/v1`` in the shape of the API the client speaks, with the status its SDK expects.

OpenAI: ``{"error": {"message", "type", "param", "code"}}``; Anthropic: ``{"type": "error", "error": {"type",
"message"}, "request_id"}``. The status is the native API's (``interfaces.http.errors.STATUS_BY_ERROR``) except
that an invalid request is 400 in both APIs; a 402 (budget spent) is OpenAI's 429 ``insufficient_quota`` and
Anthropic's 402 ``billing_error``, both with ``x-should-retry: false`` so that the SDKs do not retry it; a 503 is
Anthropic's 529 ``overloaded_error``. Whichever the shape, the SDKs raise
their usual classes: ``AuthenticationError``, ``NotFoundError``, ``RateLimitError``, ``InternalServerError``...
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import orjson
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from domain.idempotency.errors import IdempotencyKeyReused
from domain.llm.errors import ModelNotFound
from domain.shared.errors import (
    ContextTooLong,
    DomainError,
    RateLimited,
    RuleViolation,
    Unauthenticated,
    UpstreamRejected,
)
from interfaces.http.context import request_id_var
from interfaces.http.errors import observe_error, public_detail, status_for


class Dialect(enum.StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


def dialect_of(scope: Scope) -> Dialect:
    """Anthropic for ``/v1/messages``, and for the model list asked with an ``anthropic-version`` header."""
    path: str = scope["path"]
    if path.startswith("/v1/messages"):
        return Dialect.ANTHROPIC
    if path.startswith("/v1/models") and any(name == b"anthropic-version" for name, _ in scope["headers"]):
        return Dialect.ANTHROPIC
    return Dialect.OPENAI


_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# The codes OpenAI's own API uses for the same situations.
_OPENAI_CODES: dict[type[DomainError], str] = {
    Unauthenticated: "invalid_api_key",
    ModelNotFound: "model_not_found",
    ContextTooLong: "context_length_exceeded",
    RateLimited: "rate_limit_exceeded",
}


class RequestBodyInvalid(Exception):
    """The body does not match the API's schema: Pydantic's errors, for a 400 naming the worst one."""

    def __init__(self, errors: Sequence[Any]) -> None:
        super().__init__("invalid request body")
        self.errors = list(errors)


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(dialect: Dialect, status: int, message: str, *, code: str | None, param: str | None = None) -> Any:
    if dialect is Dialect.ANTHROPIC:
        kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id_var.get()}
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    if status == 402:
        kind = code = "insufficient_quota"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(
    dialect: Dialect,
    status: int,
    message: str,
    *,
    code: str | None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    wire_status = status
    headers = dict(headers or {})
    if status == 402:
        headers["x-should-retry"] = "false"  # a spent budget stays spent: both SDKs obey this header
        if dialect is Dialect.OPENAI:
            wire_status = 429  # OpenAI's answer to a spent quota; its SDK raises RateLimitError
    if status == 503 and dialect is Dialect.ANTHROPIC:
        wire_status = 529  # Anthropic's answer when it cannot serve now; its SDK raises OverloadedError
    body = error_body(dialect, status, message, code=code, param=param)
    if dialect is Dialect.ANTHROPIC:
        headers["request-id"] = request_id_var.get()
    return JsonResponse(body, status_code=wire_status, headers=headers)


def compat_status(exc: DomainError) -> int:
    if isinstance(exc, IdempotencyKeyReused):
        return 422  # as on the native API: the request is well formed, the key belongs to another one
    if isinstance(exc, RuleViolation | UpstreamRejected | ContextTooLong):
        return 400  # both APIs answer an invalid request with 400
    return status_for(exc)


def domain_error_fields(exc: DomainError) -> tuple[int, str, str, dict[str, str]]:
    """Status, message, OpenAI code and headers for a domain error, in either shape."""
    status = compat_status(exc)
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after_seconds", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    elif status == 503:
        headers["Retry-After"] = "1"
    code = next((c for cls, c in _OPENAI_CODES.items() if isinstance(exc, cls)), exc.code)
    return status, public_detail(exc), code, headers


async def _domain_error(request: Request, exc: Exception) -> JsonResponse:
    assert isinstance(exc, DomainError)
    status, message, code, headers = domain_error_fields(exc)
    observe_error(request, exc, message)
    param = "model" if isinstance(exc, ModelNotFound) else None
    return error_response(dialect_of(request.scope), status, message, code=code, param=param, headers=headers)


_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "none", "list", "dict"})


def field_location(loc: tuple[int | str, ...]) -> str:
    """``messages.0.content.0.image``: the field path, without ``body`` and the union branches Pydantic names by
    type (``str``, ``list[...]``)."""
    parts = [str(p) for p in loc if p != "body" and not (isinstance(p, str) and ("[" in p or p in _TYPE_NAMES))]
    return ".".join(parts) or "body"


async def _validation_error(request: Request, exc: Exception) -> JsonResponse:
    assert isinstance(exc, RequestBodyInvalid)
    errors = exc.errors
    # The deepest error is the most telling: for a union, the branch that got furthest.
    worst: dict[str, Any] = max(errors, key=lambda e: len(e.get("loc", ())), default={})
    where = field_location(tuple(worst.get("loc", ())))
    message = f"{where}: {worst.get('msg', 'invalid value')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return error_response(dialect_of(request.scope), 400, message, code="invalid_value", param=where)


async def _http_error(request: Request, exc: Exception) -> JsonResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
    if exc.status_code == 404:
        message = f"Invalid URL ({request.method} {request.url.path})"
    headers = dict(exc.headers) if exc.headers else None
    return error_response(dialect_of(request.scope), exc.status_code, message, code=None, headers=headers)


async def _unexpected_error(request: Request, exc: Exception) -> JsonResponse:
    """Logged by the request-context middleware (this handler runs, then the error travels on); no detail leaks."""
    return error_response(dialect_of(request.scope), 500, "an unexpected error occurred", code="internal_error")


Handler = Callable[[Request, Exception], Coroutine[Any, Any, Response]]
EXCEPTION_HANDLERS: dict[Any, Handler] = {
    DomainError: _domain_error,
    RequestBodyInvalid: _validation_error,
    StarletteHTTPException: _http_error,
    Exception: _unexpected_error,
}

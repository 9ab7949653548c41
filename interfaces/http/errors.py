"""The one table from error to HTTP status, and the one renderer of RFC 9457 ``application/problem+json``.

Every problem body (the error handlers', the middleware's last-resort 500 and 413, the SSE ``error`` events) is
built by ``problem_body``; a domain error's by ``domain_problem``, which masks what must not reach a client
(``public_detail``). The OpenAI and Anthropic error shapes (``interfaces.http.compat.errors``) render the same
errors with the same statuses and the same masking.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path

from domain.credentials.errors import CredentialEncryptionUnavailable, ProviderKeyRejected, ProviderNotSupported
from domain.files.errors import FileTooLarge
from domain.shared.errors import (
    CircuitOpen,
    Conflict,
    ContentFiltered,
    ContextTooLong,
    DependencyUnavailable,
    DomainError,
    Forbidden,
    NotFound,
    RateLimited,
    RuleViolation,
    ServiceUnavailable,
    ShuttingDown,
    Unauthenticated,
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from domain.usage.errors import BudgetExceeded, LimitExceeded
from infrastructure.observability.logging import get_logger
from interfaces.http.context import client_address, request_id_var
from interfaces.http.rate_limit_headers import remember

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:switchboard:problem:"

# Most specific first: the first matching class wins.
STATUS_BY_ERROR: tuple[tuple[type[DomainError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (ProviderNotSupported, 400),
    (RuleViolation, 422),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (RateLimited, 429),
    (FileTooLarge, 413),
    # 402, not 429: a budget is not freed by waiting a minute, and SDKs retry a 429 on their own (OpenAI's and
    # Anthropic's both do), which would only burn requests against a limit that stays shut until the month ends.
    (BudgetExceeded, 402),
    (DependencyUnavailable, 503),
    (ServiceUnavailable, 503),
    # No key-encryption key configured: the service cannot store or read credentials until the operator sets one.
    (CredentialEncryptionUnavailable, 503),
    (ShuttingDown, 503),
    (ContextTooLong, 422),
    (ContentFiltered, 400),
    (UpstreamRejected, 422),
    (UpstreamTimeout, 504),
    (UpstreamRateLimited, 503),
    (UpstreamUnavailable, 503),
    (CircuitOpen, 503),
    # A user's own provider key refused (on save or on a call): theirs to replace, so a 4xx naming it.
    (ProviderKeyRejected, 422),
    (UpstreamAuthError, 502),
    (UpstreamBadResponse, 502),
    (UpstreamError, 502),
)
# Upstream auth problems are the operator's, and the provider's message may quote part of the gateway's key.
_GENERIC_DETAIL: dict[type[DomainError], str] = {
    UpstreamAuthError: "the upstream provider refused the gateway's credentials"
}


def public_detail(error: DomainError) -> str:
    """What a client may read of an error: its detail, or a generic one where the detail is the operator's."""
    return _GENERIC_DETAIL.get(type(error), error.detail)


def problem_body(
    *, status: int, code: str, title: str, detail: str, instance: str, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A problem+json body, with the stable ``code`` and the request id."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "request_id": request_id_var.get(),
    }
    if errors is not None:
        body["errors"] = errors
    return body


def domain_problem(error: DomainError, instance: str) -> dict[str, Any]:
    """The problem body of a domain error: its status from the one table, its detail masked where it must be."""
    return problem_body(
        status=status_for(error), code=error.code, title=error.title, detail=public_detail(error), instance=instance
    )


class ProblemResponse(Response):
    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Problem(BaseModel):
    """RFC 9457 problem details, plus a stable ``code`` and the ``request_id`` to quote to an operator."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    request_id: str
    errors: list[dict[str, Any]] | None = None


def status_for(error: DomainError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 400


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> ProblemResponse:
    body = problem_body(status=status, code=code, title=title, detail=detail, instance=request.url.path, errors=errors)
    return ProblemResponse(body, status_code=status, headers=headers)


# Every API route reaches the database (authentication does), so any of them may answer 503 while it is unreachable.
ALWAYS_POSSIBLE = (503,)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """For a route's ``responses=``: the error statuses it may answer, all in the problem format; 503 included.

    An authenticated route (one that may answer 401) may also answer 429 (rate limit): the authentication dependency
    counts every request.
    """
    every = {*statuses, *ALWAYS_POSSIBLE}
    if 401 in statuses:
        every.add(429)
    return {
        s: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": "Problem details"} for s in sorted(every)
    }


async def _domain_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, DomainError)
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="switchboard"'
    if isinstance(exc, LimitExceeded):
        remember(request.scope.setdefault("state", {}), exc.states)
    retry_after = getattr(exc, "retry_after_seconds", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    elif status == 503:
        headers["Retry-After"] = "1"
    detail = public_detail(exc)
    observe_error(request, exc, detail)
    return problem_response(request, status=status, code=exc.code, title=exc.title, detail=detail, headers=headers)


def observe_error(request: Request, exc: DomainError, detail: str) -> None:
    """Security events for refused credentials and access, a count of rate-limited requests (every API shape)."""
    container = request.app.state.container
    client = client_address(request)
    if isinstance(exc, Unauthenticated):
        container.security_log().auth_failed(reason=exc.detail, code=exc.code, client=client)
    elif isinstance(exc, Forbidden):
        container.security_log().access_denied(reason=exc.detail, client=client)
    elif isinstance(exc, RateLimited):
        container.metrics().rate_limited.labels(exc.code).inc()
    elif isinstance(exc, UpstreamError | DependencyUnavailable | ServiceUnavailable):
        get_logger("switchboard.http").warning("dependency error", code=exc.code, detail=detail)


async def _validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    return problem_response(
        request,
        status=422,
        code="validation_error",
        title="Invalid request",
        detail="the request did not validate; see errors",
        errors=errors,
    )


_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


async def _http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = request.app.state.allowed_methods.of(request.url.path)
    return problem_response(request, status=exc.status_code, code=code, title=title, detail=detail, headers=headers)


class AllowedMethods:
    """Which methods each path serves, for a 405's ``Allow``. Starlette names only the methods of the first route
    matching the path, and here each method of a path is a route of its own (``GET`` and ``POST /api-keys``)."""

    def __init__(self, templates: Iterable[tuple[Any, str]]) -> None:
        self._paths: list[tuple[re.Pattern[str], frozenset[str]]] = [
            (compile_path(template)[0], frozenset(route.methods))
            for route, template in templates
            if getattr(route, "methods", None)
        ]

    def of(self, path: str) -> str:
        methods = set[str]().union(*(methods for pattern, methods in self._paths if pattern.match(path)))
        return ", ".join(sorted(methods))


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)

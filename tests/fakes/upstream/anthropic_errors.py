"""Anthropic's errors: the status and code tables, the 400s for malformed requests, the error bodies (wording
copied from the real API)."""

from __future__ import annotations

from typing import Any, Final

from tests.fakes.upstream.behaviours import Behaviour, error

ERRORS: Final[dict[int, tuple[str, str]]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: (
        "billing_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to "
        "upgrade or purchase credits.",
    ),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute. For "
        "details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers "
        "for current usage. Please reduce the prompt length or the maximum tokens requested, or try again "
        "later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your "
        "options for a rate limit increase.",
    ),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}

CODES: Final[dict[str, tuple[str, str]]] = {
    "context_length_exceeded": (
        "invalid_request_error",
        "prompt is too long: {tokens} tokens > 200000 maximum",
    ),
}


def missing_key() -> Behaviour:
    return error(401, message="x-api-key header is required")


def not_found(method: str, path: str) -> Behaviour:
    return error(404, message="Not Found", code="")


def _no_version() -> Behaviour:
    return error(400, message="anthropic-version: header is required")


# ---- requests ------------------------------------------------------------------------------------


def validate(headers: dict[str, str], body: Any, *, reject_system_role: bool) -> Behaviour | None:
    """The 400 the real API gives a malformed messages request, if any.

    ``reject_system_role``: refuse a ``role: "system"`` message as the API used to.
    """
    if "anthropic-version" not in headers:
        return _no_version()
    if not isinstance(body, dict):
        return error(400, message="There was an error parsing the body of your request")
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return error(400, message=f"{name}: Field required")
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return error(400, message="max_tokens: Input should be greater than or equal to 1")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return error(400, message="messages: at least one message is required")
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role == "system" and reject_system_role:
            return error(
                400,
                message='messages: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.',
            )
        if role not in ("user", "assistant", "system"):
            return error(400, message=f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'")
    return None


def validate_count_tokens(headers: dict[str, str], body: Any) -> Behaviour | None:
    if "anthropic-version" not in headers:
        return _no_version()
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return error(400, message="messages: Field required")
    return None


def error_body(b: Behaviour, status: int, model: str, tokens: int, request_id: str) -> dict[str, Any]:
    """The real API's error body for ``b`` answered with ``status``."""
    fill = {"model": model or "unknown", "tokens": max(tokens, 200_000) + 1000}
    if b.code and b.code in CODES:
        etype, message = CODES[b.code]
    else:
        etype, message = ERRORS.get(status, ("api_error" if status >= 500 else "invalid_request_error", "Error"))
    payload = {
        "type": "error",
        "error": {
            "type": b.error_type or etype,
            "message": message.format(**fill) if b.message is None else b.message,
        },
        "request_id": request_id,
    }
    return payload

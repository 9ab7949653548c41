"""Gemini's errors: Google's ``{"error": {"code", "message", "status"}}`` bodies and the 400s for malformed
requests (wording after the real API)."""

from __future__ import annotations

from typing import Any, Final

from tests.fakes.upstream.behaviours import Behaviour, error

# status -> (Google status, message); ``{model}`` / ``{tokens}`` are filled in.
ERRORS: Final[dict[int, tuple[str, str]]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "API key not valid. Please pass a valid API key."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "models/{model} is not found for API version v1beta, or is not supported."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    ),
    502: ("UNAVAILABLE", "Bad gateway."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    529: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
}
CONTEXT_MESSAGE: Final = "The input token count ({tokens}) exceeds the maximum number of tokens allowed (1048576)."


def missing_key() -> Behaviour:
    return error(
        403,
        message="Method doesn't allow unregistered callers (callers without established identity). Please use "
        "API Key or other form of API consumer identity to call this API.",
    )


def not_found(method: str, path: str) -> Behaviour:
    return error(404, message=f"Invalid URL ({method} {path})")


def validate(headers: dict[str, str], body: Any, *, reject_system_role: bool) -> Behaviour | None:
    """The 400 the real API gives a malformed ``generateContent`` request, if any."""
    if not isinstance(body, dict):
        return error(400, message="Invalid JSON payload received.")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return error(400, message="* GenerateContentRequest.contents: contents is not specified")
    for index, content in enumerate(contents):
        if not isinstance(content, dict) or content.get("role") not in ("user", "model"):
            return error(400, message=f"Please use a valid role: user, model. (contents[{index}])")
    return None


def error_body(b: Behaviour, status: int, model: str, tokens: int, request_id: str) -> dict[str, Any]:
    """The real API's error body for ``b`` answered with ``status``."""
    google_status, message = ERRORS.get(status, ("UNKNOWN", "Error."))
    if b.code == "context_length_exceeded":
        message = CONTEXT_MESSAGE
    fill = {"model": model or "unknown", "tokens": max(tokens, 1_048_576) + 1000}
    text = message.format(**fill) if b.message is None else b.message
    return {"error": {"code": status, "message": text, "status": google_status}}

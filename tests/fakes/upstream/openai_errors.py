"""OpenAI's errors: the status and code tables, the 400s for malformed requests, the error bodies (wording
copied from the real API)."""

from __future__ import annotations

from typing import Any, Final

from tests.fakes.upstream.behaviours import Behaviour, error

# status -> (type, code, param, message); ``{model}`` / ``{tokens}`` are filled in.
ERRORS: Final[dict[int, tuple[str, str | None, str | None, str]]] = {
    400: ("invalid_request_error", None, None, "Invalid request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        None,
        "Incorrect API key provided: sk-fake****. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: (
        "request_forbidden",
        "unsupported_country_region_territory",
        None,
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        None,
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    409: ("invalid_request_error", None, None, "Conflict."),
    422: ("invalid_request_error", None, None, "Unprocessable entity."),
    429: (
        "requests",
        "rate_limit_exceeded",
        None,
        "Rate limit reached for {model} in organization org-fake on requests per min (RPM): Limit 500, "
        "Used 500, Requested 1. Please try again in 120ms. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
    ),
    500: (
        "server_error",
        None,
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", None, None, "Bad gateway."),
    503: ("server_error", None, None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, None, "Gateway timeout."),
    529: ("server_error", None, None, "Overloaded."),
}

CODES: Final[dict[str, tuple[str, str | None, str]]] = {
    "context_length_exceeded": (
        "invalid_request_error",
        "messages",
        "This model's maximum context length is 128000 tokens. However, your messages resulted in "
        "{tokens} tokens. Please reduce the length of the messages.",
    ),
    "insufficient_quota": (
        "insufficient_quota",
        None,
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
    ),
    "invalid_api_key": (ERRORS[401][0], None, ERRORS[401][3]),
    "model_not_found": (ERRORS[404][0], None, ERRORS[404][3]),
}


_NO_KEY: Final = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)
_BAD_JSON: Final = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. "
    "If you have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)
_ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def missing_key() -> Behaviour:
    return error(401, message=_NO_KEY, code="")


def not_found(method: str, path: str) -> Behaviour:
    return error(404, message=f"Invalid URL ({method} {path})", code="")


def bad_json() -> Behaviour:
    return error(400, message=_BAD_JSON, code="")


def no_model() -> Behaviour:
    return error(400, message="you must provide a model parameter", code="")


def missing_parameter(name: str) -> Behaviour:
    return error(400, message=f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")


# ---- requests ------------------------------------------------------------------------------------


def validate_input_tokens(body: Any) -> Behaviour | None:
    """The 400 the real API gives a malformed ``/v1/responses/input_tokens`` request, if any."""
    if not isinstance(body, dict):
        return bad_json()
    if not isinstance(body.get("model"), str) or not body["model"]:
        return no_model()
    items = body.get("input")
    if not isinstance(items, (str, list)) or (isinstance(items, list) and not all(isinstance(i, dict) for i in items)):
        return missing_parameter("input")
    return None


def validate(headers: dict[str, str], body: Any, *, reject_system_role: bool) -> Behaviour | None:
    """The 400 the real API gives a malformed chat completion request, if any (headers are not checked)."""
    if not isinstance(body, dict):
        return bad_json()
    if not isinstance(body.get("model"), str) or not body["model"]:
        return no_model()
    messages = body.get("messages")
    if messages is None:
        return missing_parameter("messages")
    problem = _validate_messages(messages)
    if problem is None and body.get("stream_options") is not None and not body.get("stream"):
        return error(
            400,
            message="The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="",
        )
    return problem


def _validate_messages(messages: Any) -> Behaviour | None:
    if not isinstance(messages, list) or not messages:
        return error(
            400,
            message="Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in _ROLES:
            return error(
                400,
                message=f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                "'function', 'tool', and 'developer'.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
        if role == "tool" and not msg.get("tool_call_id"):
            return error(
                400,
                message="Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'.",
                param=f"messages.[{i}].tool_call_id",
                code="",
            )
    return None


def error_body(b: Behaviour, status: int, model: str, tokens: int, request_id: str) -> dict[str, Any]:
    """The real API's error body for ``b`` answered with ``status``."""
    fill = {"model": model or "unknown", "tokens": max(tokens, 128_000) + 1000}
    if b.code and b.code in CODES:
        etype, param, message = CODES[b.code]
        code: str | None = b.code
    else:
        etype, code, param, message = ERRORS.get(
            status,
            ("server_error" if status >= 500 else "invalid_request_error", None, None, "Error."),
        )
        if b.code is not None:
            code = b.code or None  # "" means an explicit null
    payload: dict[str, Any] = {
        "error": {
            "message": message.format(**fill) if b.message is None else b.message,
            "type": b.error_type or etype,
            "param": b.param if b.param is not None else param,
            "code": code,
        }
    }
    return payload

"""From what an upstream HTTP API answered to the domain's ``UpstreamError`` tree, shared by every adapter.

Messages are short, never carry an SDK object, and have the deployment's API key blanked out should an upstream
echo it back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import TypedDict

from domain.shared.errors import (
    ContentFiltered,
    ContextTooLong,
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

_CONTEXT_HINTS = (
    "context_length_exceeded",
    "context_window_exceeded",
    "maximum context length",
    "prompt is too long",
    "context length",
    "too many tokens",
    "exceeds the maximum number of tokens",  # Gemini
    "input is too long",  # Bedrock
)
_MAX_DETAIL = 300


class Where(TypedDict):
    """Who failed, as every ``UpstreamError`` says it: ``UpstreamError(detail, **where)``."""

    provider: str
    model: str


# What reading a body that does not match the API raises (a missing key, a wrong type...): an UpstreamBadResponse.
SHAPE_FAILURES = (AttributeError, TypeError, IndexError, KeyError, ValueError)


def parse_retry_after(headers: Mapping[str, str], *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (milliseconds) or ``retry-after`` (seconds or an HTTP date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            value = float(milliseconds) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            value = parsedate_to_datetime(raw).timestamp() - now()
        except (TypeError, ValueError, IndexError):
            return None
        return max(value, 0.0)
    return value if math.isfinite(value) and value >= 0 else None


def redact(text: str, secret: str | None) -> str:
    """``text`` cut to a readable length, with ``secret`` blanked out wherever it appears."""
    if secret:
        text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "\u2026"


def _is_context_error(*hints: str | None) -> bool:
    text = " ".join(h.lower() for h in hints if h)
    return any(hint in text for hint in _CONTEXT_HINTS)


def is_html(body: bytes | str, content_type: str | None = None) -> bool:
    """Whether an answer is a web page (a proxy's or a web server's), not an API's JSON."""
    if content_type is not None and "html" in content_type.lower():
        return True
    if isinstance(body, bytes):
        return body[:256].lstrip().startswith(b"<")
    return body[:256].lstrip().startswith("<")


def error_for_status(
    status: int,
    *,
    message: str,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    provider: str,
    model: str,
    detail: str | None = None,
    html: bool = False,
) -> UpstreamError:
    """The domain error for an HTTP error status. ``message`` must already be redacted; ``html``: the body was a
    web page.

    A redirect, or an HTML page where the API answers JSON (a proxy's error page, a wrong ``base_url``), is a bad
    response that the same request would get again: not retryable (a fallback may still serve). A 429 stays a rate
    limit whatever its body, as its Retry-After holds.
    """
    detail = detail or f"{provider} answered {status}" + (f": {message}" if message else "")
    where = Where(provider=provider, model=model)
    if 300 <= status < 400:
        return UpstreamBadResponse(
            f"{provider} answered with a redirect ({status}); check base_url", retryable=False, **where
        )
    if html and status != 429:
        return UpstreamBadResponse(
            f"{provider} answered {status} with an HTML page, not its API's error (a proxy, or a wrong base_url)",
            retryable=False,
            **where,
        )
    if status == 429:
        retry_after = parse_retry_after(headers or {})
        return UpstreamRateLimited(detail, retry_after_seconds=retry_after, **where)
    if status in (401, 403):
        return UpstreamAuthError(f"{provider} refused the gateway's credentials ({status})", **where)
    if status == 400 and code == "content_filter":
        return ContentFiltered(
            f"{provider}'s content filter refused the request" + (f": {message}" if message else ""), **where
        )
    if status == 413 or (status in (400, 422) and _is_context_error(code, message)):
        return ContextTooLong(detail, **where)
    if status == 408:
        return UpstreamTimeout(detail, **where)
    if 400 <= status < 500:
        return UpstreamRejected(detail, **where)
    if status >= 500:
        return UpstreamUnavailable(detail, **where)
    return UpstreamBadResponse(detail, **where)


def error_for_type(error_type: str | None, *, message: str, provider: str, model: str) -> UpstreamError:
    """The domain error for an error event inside a 200 stream, named by its ``type`` (Anthropic's vocabulary)."""
    status = {
        "invalid_request_error": 400,
        "authentication_error": 401,
        "permission_error": 403,
        "not_found_error": 404,
        "request_too_large": 413,
        "rate_limit_error": 429,
        "api_error": 500,
        "overloaded_error": 529,
        "timeout_error": 504,
    }.get(error_type or "", 502)
    detail = f"{provider} failed mid-stream ({error_type or 'unknown error'})" + (f": {message}" if message else "")
    return error_for_status(status, message=message, code=error_type, provider=provider, model=model, detail=detail)

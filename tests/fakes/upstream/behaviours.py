"""What a test scripts: one :class:`Behaviour` per completion request, built with the factory functions.

A behaviour says how the fake answers (normally, or with a fault); :mod:`.faults` acts the faults out on
the wire and the wire modules render the errors in each provider's shape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final, Literal

BehaviourKind = Literal[
    "ok",
    "error",
    "hang",
    "disconnect",
    "drop_stream",
    "stream_error",
    "malformed",
    "html_error",
    "missing_fields",
    "huge_body",
    "redirect",
]


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One scripted reaction to one completion request. Build it with the factory functions."""

    kind: BehaviourKind = "ok"
    latency: float = 0.0
    """Seconds to wait before the response starts (added to the server-wide latency)."""
    chunk_delay: float | None = None
    """Seconds between two stream events (``None``: the server-wide default)."""
    status: int = 200
    message: str | None = None
    error_type: str | None = None
    code: str | None = None
    param: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    n: int = 0
    """Events before a drop / stall / stream error; bytes for ``huge_body``."""
    location: str | None = None
    text: str | None = None
    """Answer text overriding the echo (``ok``)."""
    cached_tokens: int = 0
    cache_creation_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["headers"] = [list(pair) for pair in self.headers]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Behaviour:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown behaviour fields: {sorted(unknown)}")
        values = dict(data)
        values["headers"] = tuple((str(k), str(v)) for k, v in values.get("headers", ()))
        return cls(**values)


def ok(
    text: str | None = None,
    *,
    cached_tokens: int = 0,
    cache_creation_tokens: int = 0,
    latency: float = 0.0,
    chunk_delay: float | None = None,
) -> Behaviour:
    """A normal success; ``text`` replaces the echo answer, cache token counts go into ``usage``."""
    return Behaviour(
        "ok",
        text=text,
        cached_tokens=cached_tokens,
        cache_creation_tokens=cache_creation_tokens,
        latency=latency,
        chunk_delay=chunk_delay,
    )


def delay(seconds: float, *, chunk_delay: float | None = None) -> Behaviour:
    """Succeed normally after ``seconds``; ``chunk_delay`` spaces out the stream events."""
    return Behaviour("ok", latency=seconds, chunk_delay=chunk_delay)


def error(
    status: int,
    *,
    message: str | None = None,
    error_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    retry_after: float | str | None = None,
    retry_after_ms: float | None = None,
    should_retry: bool | None = None,
    headers: dict[str, str] | None = None,
    latency: float = 0.0,
) -> Behaviour:
    """An HTTP error with the provider's real error body.

    Unset fields default to what the real API sends for ``status`` (see ``openai_errors.ERRORS`` and
    ``anthropic_errors.ERRORS``); ``code="context_length_exceeded"`` gives the context-window message.
    ``retry_after`` / ``retry_after_ms`` set the ``retry-after`` / ``retry-after-ms`` headers and
    ``should_retry`` the ``x-should-retry`` header, all three honoured by both SDKs.
    """
    extra: list[tuple[str, str]] = []
    if retry_after is not None:
        extra.append(("retry-after", _header_number(retry_after)))
    if retry_after_ms is not None:
        extra.append(("retry-after-ms", _header_number(retry_after_ms)))
    if should_retry is not None:
        extra.append(("x-should-retry", "true" if should_retry else "false"))
    extra.extend((k.lower(), v) for k, v in (headers or {}).items())
    return Behaviour(
        "error",
        status=status,
        message=message,
        error_type=error_type,
        code=code,
        param=param,
        headers=tuple(extra),
        latency=latency,
    )


def rate_limited(retry_after: float | str | None = None, *, retry_after_ms: float | None = None) -> Behaviour:
    """429: OpenAI ``rate_limit_exceeded`` / Anthropic ``rate_limit_error``."""
    return error(429, retry_after=retry_after, retry_after_ms=retry_after_ms)


def server_error(status: int = 500) -> Behaviour:
    """5xx: OpenAI ``server_error`` / Anthropic ``api_error``."""
    return error(status)


def overloaded() -> Behaviour:
    """529 ``overloaded_error`` (Anthropic's; the OpenAI shape says ``server_error``)."""
    return error(529)


def auth_error() -> Behaviour:
    """401: OpenAI ``invalid_api_key`` / Anthropic ``authentication_error``."""
    return error(401)


def context_length_exceeded() -> Behaviour:
    """400 with the real "context too long" wording of each provider."""
    return error(400, code="context_length_exceeded")


def hang(after_chunks: int | None = None) -> Behaviour:
    """Never answer (or, for a stream, stall after ``after_chunks`` events) until the client leaves."""
    return Behaviour("hang", n=-1 if after_chunks is None else after_chunks)


def disconnect() -> Behaviour:
    """Close the connection abruptly before sending any byte of the response."""
    return Behaviour("disconnect")


def drop_stream_after(n_chunks: int) -> Behaviour:
    """Send ``n_chunks`` stream events, then close the connection abruptly.

    The terminating event (``data: [DONE]`` / ``message_stop``) is never sent. A non-streaming
    request gets its headers and half of its body before the connection is cut.
    """
    return Behaviour("drop_stream", n=n_chunks)


def stream_error_after(n_chunks: int, status: int = 529) -> Behaviour:
    """Send ``n_chunks`` events, then an in-stream error event (as the real APIs do mid-stream).

    OpenAI: ``data: {"error": {...}}``; Anthropic: ``event: error`` with the error type for
    ``status`` (529: ``overloaded_error``). The HTTP status stays 200. A non-streaming request gets
    a plain HTTP ``status`` error.
    """
    return Behaviour("stream_error", n=n_chunks, status=status)


def malformed(after_chunks: int = 1) -> Behaviour:
    """200 with a truncated JSON body, or a stream whose event number ``after_chunks`` (0-based) has
    a truncated ``data:`` line (the stream then carries on and ends normally)."""
    return Behaviour("malformed", n=after_chunks)


def html_error(status: int = 502) -> Behaviour:
    """A proxy's HTML error page (``content-type: text/html``)."""
    return Behaviour("html_error", status=status)


def missing_fields() -> Behaviour:
    """200 with valid JSON lacking ``choices`` / ``content`` / ``usage``."""
    return Behaviour("missing_fields")


def huge_body(n_bytes: int) -> Behaviour:
    """A valid success whose answer text is about ``n_bytes`` long (completions only)."""
    return Behaviour("huge_body", n=n_bytes)


def redirect(location: str, status: int = 307) -> Behaviour:
    """A redirect to ``location`` (absolute or relative URL). Both SDKs follow redirects."""
    return Behaviour("redirect", status=status, location=location)


def _header_number(value: float | str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


OK: Final = Behaviour()
"""What a request gets when nothing is queued."""

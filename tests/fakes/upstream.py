"""A fake upstream LLM server that speaks the OpenAI and Anthropic wire formats.

It stands in for ``api.openai.com`` and ``api.anthropic.com`` in tests: point the OpenAI SDK at
``f"{up.base_url}/v1"`` and the Anthropic SDK at ``up.base_url``.

Endpoints (all under ``/v1``):

* ``POST /v1/chat/completions`` (OpenAI, JSON or SSE when ``stream: true``)
* ``POST /v1/embeddings`` (OpenAI, ``float`` or ``base64`` encoding, deterministic unit vectors)
* ``POST /v1/messages`` (Anthropic, JSON or SSE when ``stream: true``)
* ``POST /v1/messages/count_tokens`` (Anthropic)
* ``GET /v1/models`` and ``GET /v1/models/{id}`` (Anthropic shape when ``anthropic-version`` is sent)
* ``/_fake/...`` control endpoints (push behaviours, reset, stats, recorded requests) so that a fake
  running as its own process (``python -m tests.fakes.upstream``) can be scripted over HTTP.

Answers are deterministic: ``"Echo: <last user message text>"``; after a tool result
``"Tool result: <content>"``; a tool call for the first tool when tools are given and the last user
message contains ``CALL_TOOL`` (or the tool choice forces a tool). One token is one
whitespace-separated word; a stream sends one word per content delta.

Every completion-like request (chat completions, messages, embeddings) pops the next scripted
:class:`Behaviour` pushed with :meth:`FakeUpstream.push`; with an empty queue it succeeds normally.
Requests that fail authentication / validation, or hit a model made to fail with
:meth:`FakeUpstream.fail_model`, do not pop the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import contextvars
import dataclasses
import hashlib
import itertools
import logging
import math
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any, Final, Literal, Self

import orjson
import uvicorn

__all__ = [
    "Behaviour",
    "BehaviourKind",
    "FakeUpstream",
    "RecordedRequest",
    "UpstreamThread",
    "auth_error",
    "context_length_exceeded",
    "count_tokens",
    "delay",
    "disconnect",
    "drop_stream_after",
    "error",
    "hang",
    "html_error",
    "huge_body",
    "malformed",
    "missing_fields",
    "ok",
    "overloaded",
    "rate_limited",
    "redirect",
    "server_error",
    "stream_error_after",
]

Scope = dict[str, Any]
ASGIMessage = dict[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]
Provider = Literal["openai", "anthropic"]

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

# --------------------------------------------------------------------------------------------------
# Scripted behaviours
# --------------------------------------------------------------------------------------------------


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

    Unset fields default to what the real API sends for ``status`` (see ``_OPENAI_ERRORS`` and
    ``_ANTHROPIC_ERRORS``); ``code="context_length_exceeded"`` gives the context-window message.
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


# --------------------------------------------------------------------------------------------------
# Recorded requests
# --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Lower-case header names; a repeated header keeps its last value."""
    json: Any
    """The parsed JSON body (``None`` when empty or not JSON)."""
    body: bytes

    @property
    def model(self) -> str | None:
        model = self.json.get("model") if isinstance(self.json, dict) else None
        return model if isinstance(model, str) else None

    @property
    def api_key(self) -> str | None:
        """The key sent as ``x-api-key`` or as ``Authorization: Bearer``."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth[:7].lower() == "bearer " else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "json": self.json,
        }


# --------------------------------------------------------------------------------------------------
# Text, tokens and answers
# --------------------------------------------------------------------------------------------------

_PIECE_RE: Final = re.compile(r"\s*\S+")


def count_tokens(text: str) -> int:
    """The fake's token count: whitespace-separated words."""
    return len(text.split())


def _pieces(text: str) -> list[str]:
    """Split ``text`` into one-word pieces whose concatenation is exactly ``text``."""
    pieces: list[str] = _PIECE_RE.findall(text)
    tail = text[sum(map(len, pieces)) :]
    if tail:
        if pieces:
            pieces[-1] += tail
        else:
            pieces.append(tail)
    return pieces


def _split_fixed(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _content_text(content: Any) -> str:
    """Text of an OpenAI or Anthropic message content (string or list of parts / blocks)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict):
            kind = part.get("type")
            if kind in ("text", "input_text") and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif kind == "tool_result":
                parts.append(_content_text(part.get("content")))
            elif kind == "tool_use":
                parts.append(orjson.dumps(part.get("input", {})).decode())
    return " ".join(p for p in parts if p)


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _choice_count(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n > 0 else 1


def _example_value(schema: Any, depth: int = 0) -> Any:
    """A deterministic value matching a JSON schema (what the fake model "passes" to a tool)."""
    if not isinstance(schema, dict) or depth > 8:
        return "test"
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            return _example_value(options[0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        required = schema.get("required")
        names = [n for n in props if n in required] if isinstance(required, list) else list(props)
        return {name: _example_value(props[name], depth + 1) for name in names}
    if kind == "array":
        return [_example_value(schema.get("items"), depth + 1)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "test"


@dataclass(slots=True)
class _Prompt:
    model: str
    last_role: str
    last_text: str
    """Text of the last message."""
    user_text: str
    """Text of the last ``user`` message (what the answer echoes)."""
    last_is_tool_result: bool
    input_tokens: int
    tools: list[tuple[str, Any]]
    """(name, JSON schema of the arguments)"""
    forced_tool: str | None
    max_tokens: int | None
    stops: list[str]
    stream: bool


@dataclass(slots=True)
class _ToolCall:
    id: str
    name: str
    arguments: Any
    arguments_json: str


@dataclass(slots=True)
class _Answer:
    pieces: list[str]
    tool: _ToolCall | None
    reason: Literal["end", "length", "stop_sequence", "tool"]
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_creation_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.pieces)


# --------------------------------------------------------------------------------------------------
# Error shapes (wording copied from the real APIs)
# --------------------------------------------------------------------------------------------------

# status -> (type, code, param, message); ``{model}`` / ``{tokens}`` are filled in.
_OPENAI_ERRORS: Final[dict[int, tuple[str, str | None, str | None, str]]] = {
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

_OPENAI_CODES: Final[dict[str, tuple[str, str | None, str]]] = {
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
    "invalid_api_key": (_OPENAI_ERRORS[401][0], None, _OPENAI_ERRORS[401][3]),
    "model_not_found": (_OPENAI_ERRORS[404][0], None, _OPENAI_ERRORS[404][3]),
}

# status -> (type, message)
_ANTHROPIC_ERRORS: Final[dict[int, tuple[str, str]]] = {
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

_ANTHROPIC_CODES: Final[dict[str, tuple[str, str]]] = {
    "context_length_exceeded": (
        "invalid_request_error",
        "prompt is too long: {tokens} tokens > 200000 maximum",
    ),
}

_HTML_PAGE: Final = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
)

_OPENAI_NO_KEY: Final = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)
_OPENAI_BAD_JSON: Final = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. "
    "If you have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)
_OPENAI_ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

_DEFAULT_OPENAI_MODELS: Final = ("gpt-4o", "gpt-4o-mini", "text-embedding-3-small", "text-embedding-3-large")
# Not "claude-sonnet-4-5": anthropic 2.x emits a DeprecationWarning for it.
_DEFAULT_ANTHROPIC_MODELS: Final = ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-7")


def _reason_phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# --------------------------------------------------------------------------------------------------
# Embedding vectors
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _embedding(key: str, dims: int) -> tuple[float, ...]:
    seed = int.from_bytes(hashlib.sha256(f"{dims}:{key}".encode()).digest()[:8], "big")
    rng = random.Random(seed)
    vec = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    # Round-trip through float32 so that the float and base64 encodings agree exactly.
    packed = struct.pack(f"<{dims}f", *(v / norm for v in vec))
    return struct.unpack(f"<{dims}f", packed)


@lru_cache(maxsize=4096)
def _embedding_b64(key: str, dims: int) -> str:
    vec = _embedding(key, dims)
    return base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()


# --------------------------------------------------------------------------------------------------
# Plumbing: abrupt closes, disconnect watching, the uvicorn server
# --------------------------------------------------------------------------------------------------

_ABORT: Final = object()
"""Returned by the ASGI app to make uvicorn close the connection without a response."""

_ABORTING: contextvars.ContextVar[bool] = contextvars.ContextVar("fake_upstream_aborting", default=False)
_ABORT_LOG_MESSAGES: Final = frozenset(
    {
        "ASGI callable returned without completing response.",
        "ASGI callable should return None, but returned '%s'.",
    }
)


class _AbortLogFilter(logging.Filter):
    """Hide uvicorn's complaint about a connection the fake cut on purpose (and only those)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_ABORTING.get() and record.msg in _ABORT_LOG_MESSAGES)


_filter_lock = threading.Lock()
_filter_installed = False


def _install_abort_log_filter() -> None:
    global _filter_installed
    with _filter_lock:
        if not _filter_installed:
            logging.getLogger("uvicorn.error").addFilter(_AbortLogFilter())
            _filter_installed = True


class _Exchange:
    """One request/response, with a lazily started watcher for the client going away."""

    __slots__ = ("_watch", "receive", "send")

    def __init__(self, receive: Receive, send: Send) -> None:
        self.receive = receive
        self.send = send
        self._watch: asyncio.Future[ASGIMessage] | None = None

    def _watcher(self) -> asyncio.Future[ASGIMessage]:
        if self._watch is None:
            self._watch = asyncio.ensure_future(self.receive())
        return self._watch

    async def pause(self, seconds: float) -> bool:
        """Sleep; return True (early) if the client disconnected."""
        if seconds <= 0:
            return False
        done, _ = await asyncio.wait({self._watcher()}, timeout=seconds)
        return bool(done)

    async def wait_disconnect(self) -> None:
        while (await self._watcher())["type"] != "http.disconnect":
            self._watch = None

    def close(self) -> None:
        if self._watch is not None and not self._watch.done():
            self._watch.cancel()

    async def start(self, status: int, headers: Sequence[tuple[str, str]]) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )

    async def body(self, data: bytes, *, more: bool = False) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": more})

    async def respond(self, status: int, data: bytes, headers: Sequence[tuple[str, str]]) -> None:
        await self.start(status, [*headers, ("content-length", str(len(data)))])
        await self.body(data)


class _Server(uvicorn.Server):
    """uvicorn without signal handling, with an event-driven main loop and a quick hard shutdown."""

    def __init__(self, config: uvicorn.Config, *, grace: float) -> None:
        super().__init__(config)
        self._grace = grace
        self._exit_event: asyncio.Event | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_exit(self) -> None:
        self.should_exit = True
        if self._exit_event is not None:
            self._exit_event.set()

    async def main_loop(self) -> None:
        self._exit_event = asyncio.Event()
        if self.should_exit:
            return
        while not self.should_exit:
            await self.on_tick(0)  # refreshes the Date header
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_event.wait(), 1.0)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()  # closes idle keep-alive connections at once
        deadline = time.monotonic() + self._grace
        while state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        # Whatever is still in flight (hangs, slow streams) is cut: their clients see a disconnect and
        # the handlers, waiting on `receive()`, see `http.disconnect` and return.
        for connection in list(state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()
        deadline = time.monotonic() + 2.0
        while state.tasks and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        for task in list(state.tasks):
            task.cancel()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)


def _bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
    # and without it uvicorn's separate header / body writes meet Nagle + delayed ACK (40 ms per request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _http_impl() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover
        return "h11"
    return "httptools"


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------

_JSON: Final = ("content-type", "application/json")
_SSE: Final = ("content-type", "text/event-stream; charset=utf-8")


class FakeUpstream:
    """A fake OpenAI + Anthropic API server (raw ASGI app served by uvicorn on 127.0.0.1).

    Usage::

        async with FakeUpstream() as up:
            up.push(rate_limited(retry_after=1), ok())
            client = openai.AsyncOpenAI(base_url=f"{up.base_url}/v1", api_key="sk-test")
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        api_key: str | None = None,
        record: bool = True,
        openai_models: Sequence[str] = _DEFAULT_OPENAI_MODELS,
        anthropic_models: Sequence[str] = _DEFAULT_ANTHROPIC_MODELS,
        shutdown_grace: float = 0.05,
        reject_anthropic_system_role: bool = False,
    ) -> None:
        """
        ``latency``: seconds before every completion response; ``chunk_delay``: seconds between
        stream events; ``api_key``: when set, any other key gets a 401 (a missing key always does);
        ``record``: keep every request in :attr:`requests` (turn off for long benchmarks);
        ``shutdown_grace``: how long :meth:`stop` lets in-flight responses finish before cutting them;
        ``reject_anthropic_system_role``: answer a ``role: "system"`` entry in Anthropic ``messages``
        with the 400 the API used to give (anthropic 2.x's ``MessageParam`` allows such entries, so they
        are accepted by default).
        """
        self.host = host
        self.port = port
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.api_key = api_key
        self.record = record
        self.openai_models = list(openai_models)
        self.anthropic_models = list(anthropic_models)
        self.shutdown_grace = shutdown_grace
        self.reject_anthropic_system_role = reject_anthropic_system_role

        self.base_url: str = ""
        self.requests: list[RecordedRequest] = []
        self.request_count = 0
        self.in_flight = 0
        """Requests being answered; once 0 after a call, its answer is counted in the counters."""
        self.completions_served = 0
        self.embeddings_served = 0
        self.served: Counter[str] = Counter()
        """Successful answers per upstream path (``/v1/chat/completions``, ``/v1/messages``, ``/v1/embeddings``)."""

        self._queue: deque[Behaviour] = deque()
        self._failing: dict[str, Behaviour] = {}
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    # ---- scripting & inspection ------------------------------------------------------------------

    def push(self, *behaviours: Behaviour) -> None:
        """Queue behaviours; each completion request pops the next one (FIFO)."""
        self._queue.extend(behaviours)

    @property
    def pending(self) -> list[Behaviour]:
        return list(self._queue)

    def fail_model(self, model: str, status: int = 500, **error_kwargs: Any) -> None:
        """Make every request for ``model`` fail with ``error(status, **error_kwargs)``."""
        self._failing[model] = error(status, **error_kwargs)

    def unfail_model(self, model: str) -> None:
        self._failing.pop(model, None)

    def reset(self) -> None:
        """Forget recorded requests, counters, queued behaviours and failing models."""
        self._queue.clear()
        self._failing.clear()
        self.requests.clear()
        self.request_count = 0
        self.completions_served = 0
        self.embeddings_served = 0
        self.served.clear()

    @property
    def last_request(self) -> RecordedRequest:
        if not self.requests:
            raise LookupError("no request recorded")
        return self.requests[-1]

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def _next_behaviour(self) -> Behaviour:
        try:
            return self._queue.popleft()
        except IndexError:
            return _OK

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):024d}"

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("already started")
        _install_abort_log_filter()
        sock = _bind(self.host, self.port)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self.base_url = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(
            self,
            lifespan="off",
            http=_http_impl(),
            interface="asgi3",
            log_config=None,
            proxy_headers=False,
            server_header=False,
            backlog=4096,
            timeout_keep_alive=30,
        )
        server = _Server(config, grace=self.shutdown_grace)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name=f"fake-upstream:{self.port}")
        while not server.started:
            if self._task.done():
                self._server = None
                await self._task  # re-raises the startup error
                raise RuntimeError("fake upstream exited during startup")
            await asyncio.sleep(0.001)

    def request_stop(self) -> None:
        """Ask the server to stop (from its own event loop); see :meth:`wait_closed`."""
        if self._server is not None:
            self._server.request_exit()

    async def wait_closed(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.request_exit()
        try:
            await self._task
        finally:
            self._server = None
            self._task = None
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> UpstreamThread:
        """Start a fake (constructed with ``kwargs``) on its own event loop in a daemon thread."""
        handle = UpstreamThread(cls(**kwargs))
        handle.start()
        return handle

    # ---- ASGI entry point ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if scope["type"] != "http":
            return None
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        path: str = scope["path"]
        method: str = scope["method"]
        headers: dict[str, str] = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        parsed: Any = None
        bad_json = False
        if raw:
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                bad_json = True

        if path.startswith("/_fake/"):
            return await self._control(method, path, parsed, _Exchange(receive, send))

        self.request_count += 1
        if self.record:
            query = scope.get("query_string", b"").decode("latin-1")
            self.requests.append(RecordedRequest(method, path, query, headers, parsed, raw))

        ex = _Exchange(receive, send)
        self.in_flight += 1
        try:
            if method == "POST" and path == "/v1/chat/completions":
                return await self._completion("openai", headers, parsed, bad_json, ex)
            if method == "POST" and path == "/v1/messages":
                return await self._completion("anthropic", headers, parsed, bad_json, ex)
            if method == "POST" and path == "/v1/embeddings":
                return await self._embeddings(headers, parsed, bad_json, ex)
            if method == "POST" and path == "/v1/messages/count_tokens":
                return await self._count_tokens(headers, parsed, bad_json, ex)
            if method == "GET" and (path == "/v1/models" or path.startswith("/v1/models/")):
                return await self._models(path, headers, ex)
            provider: Provider = "anthropic" if "anthropic-version" in headers else "openai"
            not_found = f"Invalid URL ({method} {path})" if provider == "openai" else "Not Found"
            return await self._send_error(ex, provider, error(404, message=not_found, code=""), "")
        finally:
            self.in_flight -= 1
            ex.close()

    # ---- control endpoints -----------------------------------------------------------------------

    async def _control(self, method: str, path: str, body: Any, ex: _Exchange) -> None:
        result: Any = {"ok": True}
        status = 200
        try:
            if method == "POST" and path == "/_fake/push":
                items = body.get("behaviours", []) if isinstance(body, dict) else body
                self.push(*(Behaviour.from_dict(item) for item in items))
            elif method == "POST" and path == "/_fake/fail_model":
                kwargs = {k: v for k, v in body.items() if k not in ("model", "status")}
                self.fail_model(body["model"], int(body.get("status", 500)), **kwargs)
            elif method == "POST" and path == "/_fake/reset":
                self.reset()
            elif method == "GET" and path == "/_fake/stats":
                result = {
                    "requests": self.request_count,
                    "completions_served": self.completions_served,
                    "embeddings_served": self.embeddings_served,
                    "served_by_path": dict(self.served),
                    "pending": len(self._queue),
                }
            elif method == "GET" and path == "/_fake/requests":
                result = [r.to_dict() for r in self.requests]
            else:
                status, result = 404, {"ok": False, "error": "unknown control endpoint"}
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            status, result = 400, {"ok": False, "error": str(exc)}
        await ex.respond(status, orjson.dumps(result), [_JSON])

    # ---- auth & validation -----------------------------------------------------------------------

    def _check_auth(self, provider: Provider, headers: dict[str, str]) -> Behaviour | None:
        key: str | None = headers.get("x-api-key") if provider == "anthropic" else None
        if key is None:
            auth = headers.get("authorization", "")
            key = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if not key:
            if provider == "openai":
                return error(401, message=_OPENAI_NO_KEY, code="")
            return error(401, message="x-api-key header is required")
        if self.api_key is not None and key != self.api_key:
            return error(401)
        return None

    @staticmethod
    def _validate_openai_chat(body: Any) -> Behaviour | None:
        if not isinstance(body, dict):
            return error(400, message=_OPENAI_BAD_JSON, code="")
        if not isinstance(body.get("model"), str) or not body["model"]:
            return error(400, message="you must provide a model parameter", code="")
        messages = body.get("messages")
        if messages is None:
            return error(
                400,
                message="Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
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
            if role not in _OPENAI_ROLES:
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
        if body.get("stream_options") is not None and not body.get("stream"):
            return error(
                400,
                message="The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="",
            )
        return None

    def _validate_anthropic_messages(self, headers: dict[str, str], body: Any) -> Behaviour | None:
        if "anthropic-version" not in headers:
            return error(400, message="anthropic-version: header is required")
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
            if role == "system" and self.reject_anthropic_system_role:
                return error(
                    400,
                    message='messages: Unexpected role "system". The Messages API accepts a top-level '
                    '`system` parameter, not "system" as an input message role.',
                )
            if role not in ("user", "assistant", "system"):
                return error(400, message=f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'")
        return None

    # ---- prompts ---------------------------------------------------------------------------------

    @staticmethod
    def _openai_prompt(body: dict[str, Any]) -> _Prompt:
        messages: list[dict[str, Any]] = body["messages"]
        words = sum(count_tokens(_content_text(m.get("content"))) for m in messages)
        last = messages[-1]
        last_role = str(last.get("role"))
        last_text = _content_text(last.get("content"))
        tools: list[tuple[str, Any]] = []
        for tool in body.get("tools") or []:
            fn = tool.get("function") if isinstance(tool, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                tools.append((fn["name"], fn.get("parameters") or {}))
        forced: str | None = None
        choice = body.get("tool_choice")
        if tools and choice == "required":
            forced = tools[0][0]
        elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            forced = choice["function"].get("name")
        if choice == "none":
            tools = []
        max_tokens = body.get("max_completion_tokens")
        if max_tokens is None:
            max_tokens = body.get("max_tokens")
        stop = body.get("stop")
        stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str) and s]
        return _Prompt(
            model=body["model"],
            last_role=last_role,
            last_text=last_text,
            user_text=_last_user_text(messages),
            last_is_tool_result=last_role in ("tool", "function"),
            input_tokens=max(1, words),
            tools=tools,
            forced_tool=forced,
            max_tokens=max_tokens if isinstance(max_tokens, int) else None,
            stops=stops,
            stream=bool(body.get("stream")),
        )

    @staticmethod
    def _anthropic_prompt(body: dict[str, Any]) -> _Prompt:
        messages: list[dict[str, Any]] = body["messages"]
        words = count_tokens(_content_text(body.get("system")))
        words += sum(count_tokens(_content_text(m.get("content"))) for m in messages)
        last = messages[-1]
        content = last.get("content")
        is_tool_result = isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in content
        )
        tools: list[tuple[str, Any]] = []
        for tool in body.get("tools") or []:
            if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                tools.append((tool["name"], tool.get("input_schema") or {}))
        forced: str | None = None
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            if choice.get("type") == "tool":
                forced = choice.get("name")
            elif choice.get("type") == "any" and tools:
                forced = tools[0][0]
            elif choice.get("type") == "none":
                tools = []
        stops = [s for s in body.get("stop_sequences") or [] if isinstance(s, str) and s]
        return _Prompt(
            model=body["model"],
            last_role=str(last.get("role")),
            last_text=_content_text(content),
            user_text=_last_user_text(messages),
            last_is_tool_result=is_tool_result,
            input_tokens=max(1, words),
            tools=tools,
            forced_tool=forced,
            max_tokens=body["max_tokens"],
            stops=stops,
            stream=bool(body.get("stream")),
        )

    def _answer(self, provider: Provider, prompt: _Prompt, b: Behaviour) -> _Answer:
        usage = {
            "input_tokens": prompt.input_tokens,
            "cached_tokens": b.cached_tokens,
            "cache_creation_tokens": b.cache_creation_tokens,
        }
        if b.text is None and not prompt.last_is_tool_result and prompt.tools:
            wanted = prompt.forced_tool
            if wanted is None and prompt.last_role == "user" and "CALL_TOOL" in prompt.last_text:
                wanted = prompt.tools[0][0]
            schema = next((s for name, s in prompt.tools if name == wanted), None)
            if wanted is not None:
                args = _example_value(schema if schema is not None else {})
                if not isinstance(args, dict):
                    args = {}
                args_json = orjson.dumps(args).decode()
                call = _ToolCall(
                    id=self._new_id("call_" if provider == "openai" else "toolu_"),
                    name=wanted,
                    arguments=args,
                    arguments_json=args_json,
                )
                out = count_tokens(wanted) + max(1, count_tokens(args_json))
                return _Answer([], call, "tool", None, output_tokens=out, **usage)

        if b.kind == "huge_body":
            word = "lorem "
            text = (word * (b.n // len(word) + 1))[: max(1, b.n)].rstrip() or "x"
        elif b.text is not None:
            text = b.text
        elif prompt.last_is_tool_result:
            text = f"Tool result: {prompt.last_text}"
        else:
            text = f"Echo: {prompt.user_text}".rstrip()

        if b.kind == "huge_body":
            return _Answer(_split_fixed(text, 16384), None, "end", None, output_tokens=count_tokens(text), **usage)

        reason: Literal["end", "length", "stop_sequence"] = "end"
        stop_sequence: str | None = None
        if prompt.stops:
            hits = [(text.find(s), s) for s in prompt.stops if s in text]
            if hits:
                index, stop_sequence = min(hits)
                text = text[:index]
                reason = "stop_sequence"
        pieces = _pieces(text)
        if prompt.max_tokens is not None and len(pieces) > prompt.max_tokens:
            pieces = pieces[: max(0, prompt.max_tokens)]
            reason, stop_sequence = "length", None
        return _Answer(pieces, None, reason, stop_sequence, output_tokens=max(1, len(pieces)), **usage)

    # ---- completions -----------------------------------------------------------------------------

    async def _completion(
        self, provider: Provider, headers: dict[str, str], body: Any, bad_json: bool, ex: _Exchange
    ) -> Any:
        problem = self._check_auth(provider, headers)
        if problem is None:
            if provider == "openai":
                problem = self._validate_openai_chat(None if bad_json else body)
            else:
                problem = self._validate_anthropic_messages(headers, None if bad_json else body)
        if problem is not None:
            model = body.get("model", "") if isinstance(body, dict) else ""
            return await self._send_error(ex, provider, problem, str(model))

        prompt = self._openai_prompt(body) if provider == "openai" else self._anthropic_prompt(body)
        failing = self._failing.get(prompt.model)
        if failing is not None:
            return await self._send_error(ex, provider, failing, prompt.model, prompt.input_tokens)

        b = self._next_behaviour()
        wait = self.latency + b.latency
        if wait > 0 and await ex.pause(wait):
            return None
        kind = b.kind
        if kind == "error" or (kind == "stream_error" and not prompt.stream):
            return await self._send_error(ex, provider, b, prompt.model, prompt.input_tokens)
        stalls_mid_stream = kind == "hang" and b.n >= 0 and prompt.stream
        if kind in ("hang", "disconnect", "redirect", "html_error") and not stalls_mid_stream:
            return await self._special(ex, provider, b)

        answer = self._answer(provider, prompt, b)
        request_id = self._new_id("req_")
        if prompt.stream:
            if provider == "openai":
                events, error_event = self._openai_stream(body, prompt, answer, b)
            else:
                events, error_event = self._anthropic_stream(prompt, answer, b, request_id)
            sse_headers = [_SSE, ("cache-control", "no-cache"), self._id_header(provider, request_id)]
            result = await self._stream(ex, events, b, error_event, sse_headers)
            if result and kind in ("ok", "huge_body"):
                self._count_served(provider)
            return None

        if kind == "missing_fields":
            payload = self._missing_fields(provider, prompt.model)
        elif provider == "openai":
            payload = self._openai_json(body, prompt, answer)
        else:
            payload = self._anthropic_json(prompt, answer)
        data = orjson.dumps(payload)
        if kind == "malformed":
            data = data[: max(1, len(data) // 2)]
        resp_headers = [_JSON, self._id_header(provider, request_id)]
        if provider == "openai":
            resp_headers += [("openai-processing-ms", "1"), ("openai-version", "2020-10-01")]
        if kind == "drop_stream":
            return await self._cut_body(ex, data, resp_headers)
        await ex.respond(200, data, resp_headers)
        if kind in ("ok", "huge_body"):
            self._count_served(provider)
        return None

    def _count_served(self, provider: Provider) -> None:
        self.completions_served += 1
        self.served["/v1/chat/completions" if provider == "openai" else "/v1/messages"] += 1

    @staticmethod
    def _id_header(provider: Provider, request_id: str) -> tuple[str, str]:
        return ("x-request-id", request_id) if provider == "openai" else ("request-id", request_id)

    async def _cut_body(self, ex: _Exchange, data: bytes, headers: list[tuple[str, str]]) -> None:
        """Send the headers and half the body, then cut the connection."""
        await ex.start(200, [*headers, ("content-length", str(len(data)))])
        await ex.body(data[: len(data) // 2], more=True)
        _ABORTING.set(True)
        return None

    async def _special(self, ex: _Exchange, provider: Provider, b: Behaviour) -> Any:
        if b.kind == "hang":
            await ex.wait_disconnect()
            return None
        if b.kind == "disconnect":
            _ABORTING.set(True)
            return _ABORT
        if b.kind == "redirect":
            status = b.status if 300 <= b.status < 400 else 307
            await ex.respond(status, b"", [("location", b.location or "/"), *b.headers])
            return None
        status = b.status if b.status >= 400 else 502
        page = _HTML_PAGE.format(status=status, reason=_reason_phrase(status)).encode()
        await ex.respond(status, page, [("content-type", "text/html; charset=utf-8"), ("server", "cloudflare")])
        return None

    @staticmethod
    def _missing_fields(provider: Provider, model: str) -> dict[str, Any]:
        if provider == "openai":
            return {
                "id": "chatcmpl-missing",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
            }
        return {"id": "msg_missing", "type": "message", "role": "assistant", "model": model}

    async def _stream(
        self,
        ex: _Exchange,
        events: list[bytes],
        b: Behaviour,
        error_event: bytes,
        headers: list[tuple[str, str]],
    ) -> bool:
        """Send SSE events; True when the stream completed normally."""
        chunk_delay = self.chunk_delay if b.chunk_delay is None else b.chunk_delay
        cut = len(events)
        if b.kind in ("drop_stream", "stream_error", "hang", "malformed"):
            cut = max(0, min(b.n, len(events) - 1))
        if b.kind == "malformed":
            events = [*events[:cut], _malformed_event(events[cut]), *events[cut + 1 :]]
            cut = len(events)
        await ex.start(200, headers)
        if chunk_delay <= 0 and cut == len(events):
            await ex.body(b"".join(events))  # the fast path: the whole stream in one write
            return True
        if chunk_delay <= 0:
            await ex.body(b"".join(events[:cut]), more=True)
        else:
            for i, event in enumerate(events[:cut]):
                if i and await ex.pause(chunk_delay):
                    return False
                await ex.body(event, more=True)
        if b.kind == "drop_stream":
            _ABORTING.set(True)
            return False
        if b.kind == "hang":
            await ex.wait_disconnect()
            return False
        if b.kind == "stream_error":
            await ex.body(error_event)
            return False
        await ex.body(b"")
        return True

    # ---- OpenAI shapes ---------------------------------------------------------------------------

    @staticmethod
    def _openai_usage(answer: _Answer, n: int) -> dict[str, Any]:
        prompt_tokens = answer.input_tokens + answer.cached_tokens
        completion = answer.output_tokens * n
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": answer.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    @staticmethod
    def _openai_finish(answer: _Answer) -> str:
        return {"end": "stop", "stop_sequence": "stop", "length": "length", "tool": "tool_calls"}[answer.reason]

    def _openai_json(self, body: dict[str, Any], prompt: _Prompt, answer: _Answer) -> dict[str, Any]:
        n = _choice_count(body)
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        if answer.tool is not None:
            message["tool_calls"] = [
                {
                    "id": answer.tool.id,
                    "type": "function",
                    "function": {"name": answer.tool.name, "arguments": answer.tool.arguments_json},
                }
            ]
        else:
            message["content"] = answer.text
        finish = self._openai_finish(answer)
        return {
            "id": self._new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": prompt.model,
            "choices": [{"index": i, "message": message, "logprobs": None, "finish_reason": finish} for i in range(n)],
            "usage": self._openai_usage(answer, n),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

    def _openai_stream(
        self, body: dict[str, Any], prompt: _Prompt, answer: _Answer, b: Behaviour
    ) -> tuple[list[bytes], bytes]:
        n = _choice_count(body)
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        base: dict[str, Any] = {
            "id": self._new_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": prompt.model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

        def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
            data: dict[str, Any] = {
                **base,
                "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                data["usage"] = None
            return b"data: " + orjson.dumps(data) + b"\n\n"

        if b.kind == "missing_fields":
            return [b"data: " + orjson.dumps(base) + b"\n\n", b"data: [DONE]\n\n"], b""

        events: list[bytes] = []
        tool = answer.tool
        for i in range(n):
            if tool is not None:
                start_call = {
                    "index": 0,
                    "id": tool.id,
                    "type": "function",
                    "function": {"name": tool.name, "arguments": ""},
                }
                delta = {"role": "assistant", "content": None, "tool_calls": [start_call], "refusal": None}
                events.append(chunk(i, delta))
            else:
                events.append(chunk(i, {"role": "assistant", "content": "", "refusal": None}))
        if tool is not None:
            for part in _split_fixed(tool.arguments_json, 8):
                for i in range(n):
                    events.append(chunk(i, {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
        else:
            for piece in answer.pieces:
                for i in range(n):
                    events.append(chunk(i, {"content": piece}))
        finish = self._openai_finish(answer)
        for i in range(n):
            events.append(chunk(i, {}, finish))
        if include_usage:
            usage_chunk = {**base, "choices": [], "usage": self._openai_usage(answer, n)}
            events.append(b"data: " + orjson.dumps(usage_chunk) + b"\n\n")
        events.append(b"data: [DONE]\n\n")

        etype, _, _, emessage = _OPENAI_ERRORS.get(b.status, _OPENAI_ERRORS[500])
        error_event = b"data: " + orjson.dumps(
            {
                "error": {
                    "message": emessage.format(model=prompt.model),
                    "type": etype,
                    "param": None,
                    "code": None,
                }
            }
        )
        return events, error_event + b"\n\n"

    # ---- Anthropic shapes ------------------------------------------------------------------------

    @staticmethod
    def _anthropic_usage(answer: _Answer) -> dict[str, Any]:
        return {
            "input_tokens": answer.input_tokens,
            "cache_creation_input_tokens": answer.cache_creation_tokens,
            "cache_read_input_tokens": answer.cached_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": answer.cache_creation_tokens,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": answer.output_tokens,
            "service_tier": "standard",
        }

    @staticmethod
    def _anthropic_stop(answer: _Answer) -> str:
        return {
            "end": "end_turn",
            "stop_sequence": "stop_sequence",
            "length": "max_tokens",
            "tool": "tool_use",
        }[answer.reason]

    def _anthropic_json(self, prompt: _Prompt, answer: _Answer) -> dict[str, Any]:
        if answer.tool is not None:
            content: list[dict[str, Any]] = [
                {
                    "type": "tool_use",
                    "id": answer.tool.id,
                    "name": answer.tool.name,
                    "input": answer.tool.arguments,
                }
            ]
        else:
            content = [{"type": "text", "text": answer.text}]
        return {
            "id": self._new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": prompt.model,
            "content": content,
            "stop_reason": self._anthropic_stop(answer),
            "stop_sequence": answer.stop_sequence,
            "usage": self._anthropic_usage(answer),
        }

    def _anthropic_stream(
        self, prompt: _Prompt, answer: _Answer, b: Behaviour, request_id: str
    ) -> tuple[list[bytes], bytes]:
        def event(name: str, data: dict[str, Any]) -> bytes:
            return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

        message: dict[str, Any] = {
            "id": self._new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": prompt.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**self._anthropic_usage(answer), "output_tokens": 1},
        }
        if b.kind == "missing_fields":
            del message["usage"], message["content"]
            return [
                event("message_start", {"type": "message_start", "message": message}),
                event("message_stop", {"type": "message_stop"}),
            ], b""

        events = [event("message_start", {"type": "message_start", "message": message})]
        tool = answer.tool
        if tool is not None:
            block: dict[str, Any] = {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}
        else:
            block = {"type": "text", "text": ""}
        events.append(event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}))
        events.append(event("ping", {"type": "ping"}))
        if tool is not None:
            for part in _split_fixed(tool.arguments_json, 8):
                delta: dict[str, Any] = {"type": "input_json_delta", "partial_json": part}
                events.append(event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
        else:
            for piece in answer.pieces:
                delta = {"type": "text_delta", "text": piece}
                events.append(event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
        events.append(event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        events.append(
            event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": self._anthropic_stop(answer),
                        "stop_sequence": answer.stop_sequence,
                    },
                    "usage": {"output_tokens": answer.output_tokens},
                },
            )
        )
        events.append(event("message_stop", {"type": "message_stop"}))

        etype, emessage = _ANTHROPIC_ERRORS.get(b.status, _ANTHROPIC_ERRORS[500])
        error_event = event(
            "error",
            {
                "type": "error",
                "error": {"type": etype, "message": emessage.format(model=prompt.model)},
                "request_id": request_id,
            },
        )
        return events, error_event

    # ---- errors ----------------------------------------------------------------------------------

    async def _send_error(self, ex: _Exchange, provider: Provider, b: Behaviour, model: str, tokens: int = 0) -> None:
        status = b.status if b.status >= 400 else 500
        request_id = self._new_id("req_")
        if provider == "openai":
            fill = {"model": model or "unknown", "tokens": max(tokens, 128_000) + 1000}
            if b.code and b.code in _OPENAI_CODES:
                etype, param, message = _OPENAI_CODES[b.code]
                code: str | None = b.code
            else:
                etype, code, param, message = _OPENAI_ERRORS.get(
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
            headers = [_JSON, ("x-request-id", request_id)]
        else:
            fill = {"model": model or "unknown", "tokens": max(tokens, 200_000) + 1000}
            if b.code and b.code in _ANTHROPIC_CODES:
                etype, message = _ANTHROPIC_CODES[b.code]
            else:
                etype, message = _ANTHROPIC_ERRORS.get(
                    status, ("api_error" if status >= 500 else "invalid_request_error", "Error")
                )
            payload = {
                "type": "error",
                "error": {
                    "type": b.error_type or etype,
                    "message": message.format(**fill) if b.message is None else b.message,
                },
                "request_id": request_id,
            }
            headers = [_JSON, ("request-id", request_id)]
        await ex.respond(status, orjson.dumps(payload), [*headers, *b.headers])

    # ---- embeddings, token counting, models ------------------------------------------------------

    async def _embeddings(self, headers: dict[str, str], body: Any, bad_json: bool, ex: _Exchange) -> Any:
        problem = self._check_auth("openai", headers)
        if problem is None:
            if bad_json or not isinstance(body, dict):
                problem = error(400, message=_OPENAI_BAD_JSON, code="")
            elif not isinstance(body.get("model"), str):
                problem = error(400, message="you must provide a model parameter", code="")
            elif "input" not in body:
                problem = error(
                    400,
                    message="Missing required parameter: 'input'.",
                    param="input",
                    code="missing_required_parameter",
                )
        if problem is not None:
            return await self._send_error(ex, "openai", problem, "")
        model: str = body["model"]
        failing = self._failing.get(model)
        if failing is not None:
            return await self._send_error(ex, "openai", failing, model)
        b = self._next_behaviour()
        wait = self.latency + b.latency
        if wait > 0 and await ex.pause(wait):
            return None
        if b.kind in ("error", "stream_error"):
            return await self._send_error(ex, "openai", b, model)
        if b.kind in ("hang", "disconnect", "redirect", "html_error"):
            return await self._special(ex, "openai", b)

        raw_input = body["input"]
        items: list[Any]
        if isinstance(raw_input, str) or (
            isinstance(raw_input, list) and raw_input and all(isinstance(t, int) for t in raw_input)
        ):
            items = [raw_input]
        elif isinstance(raw_input, list):
            items = raw_input
        else:
            items = [str(raw_input)]
        dims = body.get("dimensions")
        if not isinstance(dims, int) or dims < 1:
            dims = 3072 if "large" in model else 1536
        b64 = body.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for index, item in enumerate(items):
            key = item if isinstance(item, str) else orjson.dumps(item).decode()
            tokens += count_tokens(item) if isinstance(item, str) else len(item) if isinstance(item, list) else 1
            vector: Any = _embedding_b64(key, dims) if b64 else _embedding(key, dims)
            data.append({"object": "embedding", "index": index, "embedding": vector})
        payload: dict[str, Any] = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        if b.kind == "missing_fields":
            payload = {"object": "list", "model": model}
        encoded = orjson.dumps(payload)
        if b.kind == "malformed":
            encoded = encoded[: max(1, len(encoded) // 2)]
        resp_headers = [_JSON, ("x-request-id", self._new_id("req_"))]
        if b.kind == "drop_stream":
            return await self._cut_body(ex, encoded, resp_headers)
        await ex.respond(200, encoded, resp_headers)
        if b.kind == "ok":
            self.embeddings_served += 1
            self.served["/v1/embeddings"] += 1
        return None

    async def _count_tokens(self, headers: dict[str, str], body: Any, bad_json: bool, ex: _Exchange) -> None:
        problem = self._check_auth("anthropic", headers)
        if problem is None:
            if "anthropic-version" not in headers:
                problem = error(400, message="anthropic-version: header is required")
            elif bad_json or not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                problem = error(400, message="messages: Field required")
        if problem is not None:
            return await self._send_error(ex, "anthropic", problem, "")
        words = count_tokens(_content_text(body.get("system")))
        words += sum(count_tokens(_content_text(m.get("content"))) for m in body["messages"] if isinstance(m, dict))
        await ex.respond(200, orjson.dumps({"input_tokens": max(1, words)}), [_JSON])

    async def _models(self, path: str, headers: dict[str, str], ex: _Exchange) -> None:
        anthropic = "anthropic-version" in headers
        provider: Provider = "anthropic" if anthropic else "openai"
        problem = self._check_auth(provider, headers)
        if problem is not None:
            return await self._send_error(ex, provider, problem, "")
        names = self.anthropic_models if anthropic else self.openai_models

        def info(name: str) -> dict[str, Any]:
            if anthropic:
                return {
                    "type": "model",
                    "id": name,
                    "display_name": name.replace("-", " ").title(),
                    "created_at": "2025-01-01T00:00:00Z",
                    "lifecycle": "active",
                }
            return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system"}

        if path == "/v1/models":
            models = [info(n) for n in names]
            if anthropic:
                payload: dict[str, Any] = {
                    "data": models,
                    "has_more": False,
                    "first_id": names[0] if names else None,
                    "last_id": names[-1] if names else None,
                }
            else:
                payload = {"object": "list", "data": models}
            return await ex.respond(200, orjson.dumps(payload), [_JSON])
        name = path.removeprefix("/v1/models/")
        if name not in names:
            return await self._send_error(ex, provider, error(404), name)
        await ex.respond(200, orjson.dumps(info(name)), [_JSON])
        return None


_OK: Final = Behaviour()


def _malformed_event(event: bytes) -> bytes:
    """Truncate the JSON of one SSE event (keeping its blank-line terminator)."""
    head, sep, data = event.rstrip(b"\n").rpartition(b"data: ")
    if not sep:
        return b"data: {\n\n"
    return head + b"data: " + data[: max(1, len(data) // 2)] + b"\n\n"


# --------------------------------------------------------------------------------------------------
# Running in a background thread
# --------------------------------------------------------------------------------------------------


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return None
    return uvloop.new_event_loop


class UpstreamThread:
    """A :class:`FakeUpstream` served from its own event loop in a daemon thread.

    Scripting calls (``push``, ``fail_model``, ``reset``) and reads are safe from the test thread.
    """

    def __init__(self, upstream: FakeUpstream) -> None:
        self.upstream = upstream
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return self.upstream.base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.upstream.requests

    @property
    def completions_served(self) -> int:
        return self.upstream.completions_served

    @property
    def embeddings_served(self) -> int:
        return self.upstream.embeddings_served

    @property
    def in_flight(self) -> int:
        return self.upstream.in_flight

    @property
    def pending(self) -> list[Behaviour]:
        return self.upstream.pending

    @property
    def served(self) -> dict[str, int]:
        """Successful answers per upstream path (a copy)."""
        return dict(self.upstream.served)

    def push(self, *behaviours: Behaviour) -> None:
        self.upstream.push(*behaviours)

    def fail_model(self, model: str, status: int = 500, **error_kwargs: Any) -> None:
        self.upstream.fail_model(model, status, **error_kwargs)

    def reset(self) -> None:
        self.upstream.reset()

    def start(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("fake upstream did not start")
        if self._error is not None:
            raise RuntimeError("fake upstream failed to start") from self._error

    def _run(self) -> None:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(self._main())

    async def _main(self) -> None:
        try:
            await self.upstream.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._loop = asyncio.get_running_loop()
        self._ready.set()
        await self.upstream.wait_closed()
        await self.upstream.stop()

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.upstream.request_stop)
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError("fake upstream thread did not stop")
        self._thread = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------------
# python -m tests.fakes.upstream
# --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI + Anthropic upstream (prints its base URL).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="latency before every completion")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between stream events")
    parser.add_argument("--api-key", default=None, help="only accept this key")
    parser.add_argument("--record", action="store_true", help="keep every request (GET /_fake/requests)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    upstream = FakeUpstream(
        host=args.host,
        port=args.port,
        latency=args.delay_ms / 1000,
        chunk_delay=args.chunk_delay_ms / 1000,
        api_key=args.api_key,
        record=args.record,
    )

    async def serve() -> None:
        await upstream.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, upstream.request_stop)
        print(upstream.base_url, flush=True)
        await upstream.wait_closed()
        await upstream.stop()

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve())


if __name__ == "__main__":
    main()

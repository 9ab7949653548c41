"""The endpoints: each takes a parsed request, consults the script (the queued behaviours and the failing models)
and answers in its wire format, acting out the scripted fault if there is one.

Every completion-like request (chat completions, messages, embeddings) pops the next behaviour; requests that
fail authentication or validation, or name a model made to fail, do not.
"""

from __future__ import annotations

from typing import Any, Final, Literal, Protocol

import orjson

from tests.fakes.upstream import (
    anthropic_errors,
    anthropic_wire,
    bedrock_wire,
    embeddings,
    faults,
    gemini_errors,
    gemini_wire,
    openai_errors,
    openai_wire,
)
from tests.fakes.upstream.answers import Answer, NewId, Prompt, answer
from tests.fakes.upstream.behaviours import Behaviour, error
from tests.fakes.upstream.transport import JSON, SSE, Exchange, Headers

Provider = Literal["openai", "anthropic", "gemini", "bedrock"]


class Upstream(Protocol):
    """What the endpoints need of the server: its settings, its script, its ids and its counters."""

    latency: float
    chunk_delay: float
    api_key: str | None
    other_keys: set[str]
    reject_anthropic_system_role: bool
    openai_models: list[str]
    anthropic_models: list[str]

    def next_behaviour(self) -> Behaviour: ...
    def failing(self, model: str) -> Behaviour | None: ...
    def new_id(self, prefix: str) -> str: ...
    def count_served(self, path: str) -> None: ...


class Errors(Protocol):
    """One provider's errors; :mod:`.openai_errors` and :mod:`.anthropic_errors` are the two."""

    def missing_key(self) -> Behaviour: ...
    def not_found(self, method: str, path: str) -> Behaviour: ...
    def validate(self, headers: dict[str, str], body: Any, *, reject_system_role: bool) -> Behaviour | None: ...
    def error_body(self, b: Behaviour, status: int, model: str, tokens: int, request_id: str) -> dict[str, Any]: ...


class Wire(Protocol):
    """One provider's wire format; :mod:`.openai_wire` and :mod:`.anthropic_wire` are the two."""

    @property
    def SERVED_PATH(self) -> str: ...
    @property
    def TOOL_ID_PREFIX(self) -> str: ...
    def prompt(self, body: dict[str, Any]) -> Prompt: ...
    def completion(self, body: dict[str, Any], prompt: Prompt, answer: Answer, new_id: NewId) -> dict[str, Any]: ...
    def stream(
        self, body: dict[str, Any], prompt: Prompt, answer: Answer, b: Behaviour, new_id: NewId, request_id: str
    ) -> tuple[list[bytes], bytes]: ...
    def missing_fields(self, model: str) -> dict[str, Any]: ...
    def response_headers(self, request_id: str) -> Headers: ...
    def id_header(self, request_id: str) -> tuple[str, str]: ...
    def model_info(self, name: str) -> dict[str, Any]: ...
    def models_page(self, names: list[str]) -> dict[str, Any]: ...


WIRES: Final[dict[Provider, Wire]] = {
    "openai": openai_wire,
    "anthropic": anthropic_wire,
    "gemini": gemini_wire,
    "bedrock": bedrock_wire,
}
ERRORS: Final[dict[Provider, Errors]] = {
    "openai": openai_errors,
    "anthropic": anthropic_errors,
    "gemini": gemini_errors,
    "bedrock": bedrock_wire,
}
KEY_HEADERS: Final[dict[Provider, str]] = {"anthropic": "x-api-key", "gemini": "x-goog-api-key"}


def provider_of(headers: dict[str, str]) -> Provider:
    """Which API a request that does not say it by its path is for."""
    return "anthropic" if "anthropic-version" in headers else "openai"


def check_auth(up: Upstream, provider: Provider, headers: dict[str, str]) -> Behaviour | None:
    key: str | None = headers.get(KEY_HEADERS[provider]) if provider in KEY_HEADERS else None
    if key is None:
        auth = headers.get("authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    if not key:
        return ERRORS[provider].missing_key()
    if up.api_key is not None and key != up.api_key and key not in up.other_keys:
        return error(401)
    return None


async def send_error(up: Upstream, ex: Exchange, provider: Provider, b: Behaviour, model: str, tokens: int = 0) -> None:
    status = b.status if b.status >= 400 else 500
    request_id = up.new_id("req_")
    payload = ERRORS[provider].error_body(b, status, model, tokens, request_id)
    await ex.respond(status, orjson.dumps(payload), [JSON, WIRES[provider].id_header(request_id), *b.headers])


async def _scripted(up: Upstream, ex: Exchange, provider: Provider, model: str, tokens: int) -> Behaviour | None:
    """The behaviour to answer with, once its latency has passed; None when the request is already answered
    (its model is made to fail) or its client left while it waited."""
    failing = up.failing(model)
    if failing is not None:
        await send_error(up, ex, provider, failing, model, tokens)
        return None
    b = up.next_behaviour()
    wait = up.latency + b.latency
    if wait > 0 and await ex.pause(wait):
        return None
    return b


# ---- completions ---------------------------------------------------------------------------------


async def completion(
    up: Upstream, provider: Provider, headers: dict[str, str], body: Any, bad_json: bool, ex: Exchange
) -> Any:
    """``POST /v1/chat/completions`` or ``POST /v1/messages``, as JSON or SSE."""
    wire = WIRES[provider]
    problem = check_auth(up, provider, headers)
    if problem is None:
        reject = up.reject_anthropic_system_role
        problem = ERRORS[provider].validate(headers, None if bad_json else body, reject_system_role=reject)
    if problem is not None:
        model = body.get("model", "") if isinstance(body, dict) else ""
        return await send_error(up, ex, provider, problem, str(model))
    prompt = wire.prompt(body)
    b = await _scripted(up, ex, provider, prompt.model, prompt.input_tokens)
    if b is None:
        return None
    if b.kind == "error" or (b.kind == "stream_error" and not prompt.stream):
        return await send_error(up, ex, provider, b, prompt.model, prompt.input_tokens)
    stalls_mid_stream = b.kind == "hang" and b.n >= 0 and prompt.stream
    if b.kind in faults.INSTEAD_OF_ANSWER and not stalls_mid_stream:
        return await faults.instead_of_answer(ex, b)
    said = answer(prompt, b, new_id=up.new_id, tool_id_prefix=wire.TOOL_ID_PREFIX)
    request_id = up.new_id("req_")
    send = _send_stream if prompt.stream else _send_json
    if await send(up, ex, wire, body, prompt, said, b, request_id) and b.kind in ("ok", "huge_body"):
        up.count_served(wire.SERVED_PATH)
    return None


async def _send_stream(
    up: Upstream, ex: Exchange, wire: Wire, body: Any, prompt: Prompt, said: Answer, b: Behaviour, request_id: str
) -> bool:
    events, error_event = wire.stream(body, prompt, said, b, up.new_id, request_id)
    headers = [SSE, ("cache-control", "no-cache"), wire.id_header(request_id)]
    chunk_delay = up.chunk_delay if b.chunk_delay is None else b.chunk_delay
    return await faults.send_stream(ex, events, b, error_event, headers, chunk_delay)


async def _send_json(
    up: Upstream, ex: Exchange, wire: Wire, body: Any, prompt: Prompt, said: Answer, b: Behaviour, request_id: str
) -> bool:
    if b.kind == "missing_fields":
        payload = wire.missing_fields(prompt.model)
    else:
        payload = wire.completion(body, prompt, said, up.new_id)
    data = orjson.dumps(payload)
    return await _send_body(ex, b, data, wire.response_headers(request_id))


async def _send_body(ex: Exchange, b: Behaviour, data: bytes, headers: Headers) -> bool:
    """Send a 200 JSON body, truncated or cut halfway when ``b`` says so; True when it went out whole."""
    if b.kind == "malformed":
        data = faults.truncated(data)
    if b.kind == "drop_stream":
        await faults.cut_body(ex, data, headers)
        return False
    await ex.respond(200, data, headers)
    return True


# ---- embeddings, token counting, models ----------------------------------------------------------


async def embed(up: Upstream, headers: dict[str, str], body: Any, bad_json: bool, ex: Exchange) -> Any:
    """``POST /v1/embeddings``."""
    problem = check_auth(up, "openai", headers)
    if problem is None:
        problem = embeddings.validate(body, bad_json)
    if problem is not None:
        return await send_error(up, ex, "openai", problem, "")
    model: str = body["model"]
    b = await _scripted(up, ex, "openai", model, 0)
    if b is None:
        return None
    if b.kind in ("error", "stream_error"):
        return await send_error(up, ex, "openai", b, model)
    if b.kind in faults.INSTEAD_OF_ANSWER:
        return await faults.instead_of_answer(ex, b)
    payload = embeddings.payload(body, model)
    if b.kind == "missing_fields":
        payload = {"object": "list", "model": model}
    reply_headers = [JSON, openai_wire.id_header(up.new_id("req_"))]
    if await _send_body(ex, b, orjson.dumps(payload), reply_headers) and b.kind == "ok":
        up.count_served(embeddings.SERVED_PATH)
    return None


async def count_tokens(up: Upstream, headers: dict[str, str], body: Any, bad_json: bool, ex: Exchange) -> None:
    """``POST /v1/messages/count_tokens``."""
    problem = check_auth(up, "anthropic", headers)
    if problem is None:
        problem = anthropic_errors.validate_count_tokens(headers, None if bad_json else body)
    if problem is None:
        problem = up.failing(str(body.get("model")))
    if problem is not None:
        return await send_error(up, ex, "anthropic", problem, "")
    await ex.respond(200, orjson.dumps({"input_tokens": anthropic_wire.input_tokens(body)}), [JSON])


async def input_tokens(up: Upstream, headers: dict[str, str], body: Any, bad_json: bool, ex: Exchange) -> None:
    """``POST /v1/responses/input_tokens`` (OpenAI): the words of the instructions and of the input items."""
    problem = check_auth(up, "openai", headers)
    if problem is None:
        problem = openai_errors.validate_input_tokens(None if bad_json else body)
    if problem is None:
        problem = up.failing(str(body.get("model")))
    if problem is not None:
        return await send_error(up, ex, "openai", problem, "")
    await ex.respond(200, orjson.dumps(openai_wire.input_tokens_count(body)), [JSON])
    return None


async def models(up: Upstream, path: str, headers: dict[str, str], ex: Exchange) -> None:
    """``GET /v1/models`` and ``GET /v1/models/{id}``, in Anthropic's shape when ``anthropic-version`` is sent."""
    provider = provider_of(headers)
    problem = check_auth(up, provider, headers)
    if problem is not None:
        return await send_error(up, ex, provider, problem, "")
    wire = WIRES[provider]
    names = up.anthropic_models if provider == "anthropic" else up.openai_models
    if path == "/v1/models":
        return await ex.respond(200, orjson.dumps(wire.models_page(names)), [JSON])
    name = path.removeprefix("/v1/models/")
    if name not in names:
        return await send_error(up, ex, provider, error(404), name)
    await ex.respond(200, orjson.dumps(wire.model_info(name)), [JSON])
    return None


async def not_found(up: Upstream, method: str, path: str, headers: dict[str, str], ex: Exchange) -> None:
    provider = provider_of(headers)
    await send_error(up, ex, provider, ERRORS[provider].not_found(method, path), "")

"""The load test's mixed workload: what each kind of call sends, how its answer is checked, and the closed-loop
workers that send them until a deadline (see ``bench.loadtest``)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from bench.stats import Summary, summarize

CHAT_MODEL = "lt-chat"  # OpenAI-backed
CLAUDE_MODEL = "lt-claude"  # Anthropic-backed
EMBED_MODEL = "lt-embed"
MAX_TOKENS = 32
UPSTREAM_PATHS = {
    CHAT_MODEL: "/v1/chat/completions",
    CLAUDE_MODEL: "/v1/messages",
    EMBED_MODEL: "/v1/embeddings",
}
"""The fake upstream's endpoint each model's calls reach."""


@dataclass(frozen=True)
class Kind:
    name: str
    weight: int
    streamed: bool


KINDS = (
    Kind("chat", 3, False),  # POST /v1/chat/completions
    Kind("chat-stream", 2, True),
    Kind("messages", 2, False),  # POST /v1/messages (Anthropic shape)
    Kind("messages-stream", 1, True),
    Kind("embeddings", 2, False),  # POST /v1/embeddings
    Kind("conversation", 2, False),  # POST /api/v1/conversations/{id}/messages
    Kind("conversation-stream", 1, True),
)


def kind_of_record(model: str, streamed: bool, conversation: bool) -> str:
    """The kind of call a usage record belongs to."""
    if conversation:
        return "conversation-stream" if streamed else "conversation"
    base = {CHAT_MODEL: "chat", CLAUDE_MODEL: "messages", EMBED_MODEL: "embeddings"}.get(model, f"other:{model}")
    return f"{base}-stream" if streamed else base


@dataclass(frozen=True)
class Caller:
    """One worker's identity: a user's API key, and a conversation of that user's for conversation calls."""

    api_key: str
    conversation_id: str


@dataclass
class Tally:
    calls: int = 0
    ok: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    bad_answers: int = 0
    """2xx, but not the answer expected (the echo, all vectors, a stream ending with its API's final event)."""
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def answered(self) -> int:
        """Calls answered 2xx (billed, right answer or not)."""
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def client_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if 400 <= status < 500)

    def summary(self) -> Summary | None:
        return summarize(self.latencies_ms)


@dataclass(frozen=True)
class Request:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


def build_request(kind: str, caller: Caller, prompt: str) -> Request:
    auth = {"Authorization": f"Bearer {caller.api_key}"}
    messages = [{"role": "user", "content": prompt}]
    stream = kind.endswith("-stream")
    if kind.startswith("chat"):
        body: dict[str, Any] = {"model": CHAT_MODEL, "messages": messages, "max_tokens": MAX_TOKENS, "temperature": 0.7}
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        return Request("/v1/chat/completions", body, auth)
    if kind.startswith("messages"):
        headers = {"x-api-key": caller.api_key, "anthropic-version": "2023-06-01"}
        body = {"model": CLAUDE_MODEL, "messages": messages, "max_tokens": MAX_TOKENS, "temperature": 0.7}
        return Request("/v1/messages", body | {"stream": True} if stream else body, headers)
    if kind == "embeddings":
        return Request("/v1/embeddings", {"model": EMBED_MODEL, "input": [prompt, f"{prompt} again"]}, auth)
    body = {"content": prompt, "max_tokens": MAX_TOKENS, "temperature": 0.7, "stream": stream}
    return Request(f"/api/v1/conversations/{caller.conversation_id}/messages", body, auth)


def answer_is_right(kind: str, prompt: str, status: int, body: bytes) -> bool:
    """Whether a 2xx answer is the one expected: the fake upstream echoes the prompt."""
    try:
        return _expected(kind, f"Echo: {prompt}", status, body)
    except (ValueError, KeyError, IndexError, TypeError):  # not the shape expected (orjson's errors are ValueErrors)
        return False


def _expected(kind: str, echo: str, status: int, body: bytes) -> bool:
    if kind.endswith("-stream"):
        return status == 200 and _stream_ended(kind, body) and _streamed_text(kind, body) == echo
    data = orjson.loads(body)
    if kind == "chat":
        return status == 200 and bool(data["choices"][0]["message"]["content"] == echo)
    if kind == "messages":
        return status == 200 and bool(data["content"][0]["text"] == echo)
    if kind == "embeddings":
        return status == 200 and len(data["data"]) == 2
    return status == 201 and bool(data["assistant_message"]["content"] == echo)


def _frames(body: bytes) -> list[dict[str, str]]:
    text = body.decode()
    return [dict(line.split(": ", 1) for line in frame.splitlines()) for frame in text.strip().split("\n\n") if frame]


def _stream_ended(kind: str, body: bytes) -> bool:
    if not body.endswith(b"\n\n"):
        return False
    last = _frames(body)[-1]
    if kind == "chat-stream":
        return last.get("data") == "[DONE]"
    return last.get("event") == ("message_stop" if kind == "messages-stream" else "done")


def _streamed_text(kind: str, body: bytes) -> str:
    pieces = []
    for frame in _frames(body):
        data = frame.get("data", "")
        if kind == "chat-stream" and data.startswith("{") and (choices := orjson.loads(data)["choices"]):
            pieces.append(choices[0]["delta"].get("content") or "")
        elif kind == "messages-stream" and frame.get("event") == "content_block_delta":
            pieces.append(orjson.loads(data)["delta"].get("text", ""))
        elif kind == "conversation-stream" and frame.get("event") == "delta":
            pieces.append(orjson.loads(data)["text"])
    return "".join(pieces)


@dataclass
class LoadReport:
    seconds: float
    """From the first call sent to the last one answered."""
    tallies: dict[str, Tally]

    @property
    def calls(self) -> int:
        return sum(t.calls for t in self.tallies.values())

    def total(self) -> Tally:
        """Every kind's tally added up."""
        total = Tally()
        for tally in self.tallies.values():
            total.calls += tally.calls
            total.ok += tally.ok
            total.statuses.update(tally.statuses)
            total.transport_errors += tally.transport_errors
            total.bad_answers += tally.bad_answers
            total.latencies_ms += tally.latencies_ms
        return total


async def generate(url: str, callers: Sequence[Caller], *, seconds: float, seed: int = 0) -> LoadReport:
    """One closed-loop worker per caller, each sending a weighted random mix of calls until ``seconds`` have passed;
    calls in flight at the deadline are waited for, never cut."""
    tallies = {kind.name: Tally() for kind in KINDS}
    limits = httpx.Limits(max_connections=len(callers), max_keepalive_connections=len(callers))
    started = time.monotonic()
    deadline = started + seconds
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        await asyncio.gather(
            *(_worker(http, caller, i, deadline, _mix(seed + i), tallies) for i, caller in enumerate(callers))
        )
    return LoadReport(time.monotonic() - started, tallies)


def _mix(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311  # a reproducible mix of calls, not a secret


async def _worker(
    http: httpx.AsyncClient, caller: Caller, index: int, deadline: float, rng: random.Random, tallies: dict[str, Tally]
) -> None:
    names, weights = [k.name for k in KINDS], [k.weight for k in KINDS]
    n = 0
    while time.monotonic() < deadline:
        n += 1
        kind = rng.choices(names, weights)[0]
        prompt = f"load {index} {n} say hello to the load test in a few words"  # unique: the cache never answers
        tally = tallies[kind]
        tally.calls += 1
        request = build_request(kind, caller, prompt)
        sent = time.perf_counter()
        try:
            status, body = await _send(http, request)
        except httpx.TransportError:
            tally.transport_errors += 1
            continue
        tally.latencies_ms.append((time.perf_counter() - sent) * 1000)
        tally.statuses[status] += 1
        if 200 <= status < 300:
            if answer_is_right(kind, prompt, status, body):
                tally.ok += 1
            else:
                tally.bad_answers += 1


async def _send(http: httpx.AsyncClient, request: Request) -> tuple[int, bytes]:
    async with http.stream("POST", request.path, json=request.body, headers=request.headers) as response:
        return response.status_code, await response.aread()

"""OpenAI's legacy Completions API (``POST /v1/completions``: a prompt in, text out), both ways as pure functions.

Clients still built on it (llama-index's ``OpenAILike.complete()``, older LangChain ``OpenAI`` LLMs, many scripts)
work against any chat model of the catalog: the prompt becomes one user message. What the chat models cannot honour
is refused with a 400 rather than answered wrongly: more than one prompt or choice (``n``, ``best_of``), ``suffix``
(insertion), ``logprobs`` and ``echo``. ``max_tokens`` defaults to 16, as OpenAI's does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from domain.llm.model import ChatMessage, ChatRole, Completion, CompletionRequest, StreamEnd, TextDelta, TokenUsage
from domain.shared.errors import DomainError, RuleViolation
from interfaces.http.compat.errors import Dialect, domain_error_fields, error_body
from interfaces.http.compat.openai_schemas import MAX_STOP_SEQUENCES, StreamOptions
from interfaces.http.compat.openai_wire import DONE, finish_reason, usage_body
from interfaces.http.sse import Events

DEFAULT_MAX_TOKENS = 16  # OpenAI's default for this API


class LegacyCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # presence/frequency penalties, logit_bias, seed: accepted, ignored

    model: str = Field(min_length=1)
    prompt: str | list[str] = Field(description="One prompt (a list must hold exactly one).")
    max_tokens: int | None = Field(DEFAULT_MAX_TOKENS, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=1, description="Only one choice is supported.")
    best_of: int | None = Field(None, ge=1, le=1, description="Only one candidate is supported.")
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    suffix: str | None = None
    echo: bool | None = False
    logprobs: int | None = None
    user: str | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def to_domain(self) -> CompletionRequest:
        if self.suffix:
            raise RuleViolation("suffix: insertion is not supported; send the prompt alone")
        if self.echo:
            raise RuleViolation("echo: not supported; the answer never repeats the prompt")
        if self.logprobs is not None:
            raise RuleViolation("logprobs: not supported")
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > MAX_STOP_SEQUENCES:
            raise RuleViolation(f"stop: at most {MAX_STOP_SEQUENCES} sequences")
        return CompletionRequest(
            model=self.model,
            messages=(ChatMessage(ChatRole.USER, self._prompt()),),
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            stop=tuple(s for s in stops if s),
            user=self.user,
        )

    def _prompt(self) -> str:
        if isinstance(self.prompt, str):
            prompt = self.prompt
        elif len(self.prompt) == 1:
            prompt = self.prompt[0]
        else:
            raise RuleViolation("prompt: exactly one prompt per request is supported")
        if not prompt:
            raise RuleViolation("prompt: must not be empty")
        return prompt


def completion_body(completion: Completion, *, model: str) -> dict[str, Any]:
    choice = {"text": completion.content, "index": 0, "logprobs": None, "finish_reason": _finish(completion)}
    return {**_base(model), "choices": [choice], "usage": _usage(completion.usage)}


async def completion_events(events: Events, *, model: str, include_usage: bool) -> AsyncIterator[bytes]:
    """The SSE body: a chunk per text delta, a last chunk with the finish reason, the usage chunk if asked, then
    ``[DONE]``; an upstream failure mid-stream ends it with an ``{"error": ...}`` data line."""
    base = _base(model)
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                yield _data({**base, "choices": [_chunk(event.text, None)]})
            elif isinstance(event, StreamEnd):
                frames = [_data({**base, "choices": [_chunk("", _finish(event.completion))]})]
                if include_usage:
                    frames.append(_data({**base, "choices": [], "usage": _usage(event.completion.usage)}))
                yield b"".join([*frames, DONE])
    except DomainError as exc:
        status, message, code, _ = domain_error_fields(exc)
        yield _data(error_body(Dialect.OPENAI, status, message, code=code))
    finally:
        await events.aclose()


def _base(model: str) -> dict[str, Any]:
    return {"id": "cmpl-" + uuid.uuid4().hex, "object": "text_completion", "created": int(time.time()), "model": model}


def _chunk(text: str, finish: str | None) -> dict[str, Any]:
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}


def _finish(completion: Completion) -> str:
    return finish_reason(completion.finish_reason)


def _usage(usage: TokenUsage) -> dict[str, Any]:
    body = usage_body(usage)
    del body["prompt_tokens_details"]
    return body


def _data(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"

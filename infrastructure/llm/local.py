"""The built-in offline provider: deterministic answers derived from the prompt, honest token counts, streaming.

It implements the port for real, so the whole service runs with no key and no network.

Tools, as the fake upstream of the tests does it: with tools offered, the answer is a call of the first tool when
the last message is the user's and contains ``CALL_TOOL``, or when the tool choice requires a call (of the tool it
names, if any); ``tool_choice`` ``none`` never calls. The arguments are a deterministic example of the tool's
schema, every property filled (``infrastructure.llm.local_schema``). After a tool result the answer says what the
tool returned.

Structured output: asked for a JSON schema (``response_format`` / ``text.format``), the answer is an instance of it
that validates (the same deterministic example); asked for a JSON object, ``{"answer": <the reply's text>}``. A
structured answer is never cut by ``max_tokens``: half a JSON document would be no answer at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncGenerator

from domain.llm.model import (
    ChatRole,
    Completion,
    CompletionRequest,
    FinishReason,
    ModelSpec,
    ResponseFormatType,
    ServedBy,
    StreamEnd,
    StreamOpened,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolChoiceMode,
    ToolDefinition,
    UpstreamEvent,
)
from domain.llm.ports import LLMProvider
from infrastructure.llm.local_schema import example_value

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_OPENERS = (
    "Here is what I make of it",
    "Thinking it over",
    "In short",
    "Taking your words as given",
)


def count_tokens(text: str) -> int:
    """Words and punctuation marks: a coarse but honest tokenizer, the same for input and output."""
    return len(_TOKEN.findall(text))


TOOL_MARKER = "CALL_TOOL"


def _digest(request: CompletionRequest) -> bytes:
    return hashlib.sha256("\x1e".join(m.content for m in request.messages).encode()).digest()


def _reply_tokens(request: CompletionRequest) -> list[str]:
    opener = _OPENERS[_digest(request)[0] % len(_OPENERS)]
    last = request.messages[-1] if request.messages else None
    if last is not None and last.role is ChatRole.TOOL:
        text = f"{opener}: the tool returned \u201c{last.content.strip()}\u201d."
    else:
        last_user = next((m.content for m in reversed(request.messages) if m.role is ChatRole.USER), "")
        text = f"{opener}: you said \u201c{last_user.strip()}\u201d."
    # Pieces keep their leading whitespace so that joining them gives the text back exactly.
    return re.findall(r"\s*\S+", text)


def _tool_to_call(request: CompletionRequest) -> ToolDefinition | None:
    choice = request.tool_choice
    if not request.tools or (choice is not None and choice.mode is ToolChoiceMode.NONE):
        return None
    last = request.messages[-1] if request.messages else None
    if last is None or last.role is not ChatRole.USER:
        return None  # after a tool result, the model answers in words
    if choice is not None and choice.name is not None:
        return next(tool for tool in request.tools if tool.name == choice.name)
    if (choice is not None and choice.mode is ToolChoiceMode.REQUIRED) or TOOL_MARKER in last.content:
        return request.tools[0]
    return None


def _tool_call(request: CompletionRequest, tool: ToolDefinition) -> ToolCall:
    try:
        arguments = example_value(json.loads(tool.parameters_json))
    except ValueError:
        arguments = {}
    if not isinstance(arguments, dict):
        arguments = {}
    call_id = "call_" + _digest(request).hex()[:24]
    return ToolCall(id=call_id, name=tool.name, arguments=json.dumps(arguments, separators=(",", ":")))


class LocalProvider(LLMProvider):
    def __init__(self, spec: ModelSpec, *, first_token_delay: float = 0.0, chunk_delay: float = 0.0) -> None:
        self._spec = spec
        self._first_token_delay = first_token_delay
        self._chunk_delay = chunk_delay

    async def complete(self, request: CompletionRequest) -> Completion:
        if self._first_token_delay:
            await asyncio.sleep(self._first_token_delay)
        tool = _tool_to_call(request)
        if tool is not None:
            return self._tool_completion(request, _tool_call(request, tool))
        pieces, finish, stop = self._answer(request)
        return self._completion(request, "".join(pieces), finish, stop)

    def _structured(self, request: CompletionRequest) -> list[str] | None:
        """The answer's pieces when a JSON answer is asked for; ``None`` for text."""
        wanted = request.response_format
        if wanted is None or wanted.type is ResponseFormatType.TEXT:
            return None
        if wanted.type is ResponseFormatType.JSON_SCHEMA and wanted.schema_json is not None:
            value = example_value(json.loads(wanted.schema_json))
        else:
            value = {"answer": "".join(_reply_tokens(request)).strip()}
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return [text[i : i + 16] for i in range(0, len(text), 16)]

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[UpstreamEvent, None]:
        yield StreamOpened()  # in process: open at once; the first token may come later
        if self._first_token_delay:
            await asyncio.sleep(self._first_token_delay)
        tool = _tool_to_call(request)
        if tool is not None:
            call = _tool_call(request, tool)
            yield ToolCallDelta(index=0, id=call.id, name=call.name)
            yield ToolCallDelta(index=0, arguments=call.arguments)
            yield StreamEnd(self._tool_completion(request, call))
            return
        pieces, finish, stop = self._answer(request)
        for index, piece in enumerate(pieces):
            if index and self._chunk_delay:
                await asyncio.sleep(self._chunk_delay)
            yield TextDelta(piece)
        yield StreamEnd(self._completion(request, "".join(pieces), finish, stop))

    def _answer(self, request: CompletionRequest) -> tuple[list[str], FinishReason, str | None]:
        structured = self._structured(request)
        if structured is not None:
            return structured, FinishReason.STOP, None
        pieces = _reply_tokens(request)
        limit = min(request.max_tokens or self._spec.max_output_tokens, self._spec.max_output_tokens)
        kept: list[str] = []
        used = 0
        for piece in pieces:
            cost = count_tokens(piece)
            if used + cost > limit:
                return kept, FinishReason.LENGTH, None
            kept.append(piece)
            used += cost
        for stop in request.stop:
            text = "".join(kept)
            if stop and stop in text:
                return [text[: text.index(stop)]], FinishReason.STOP, stop
        return kept, FinishReason.STOP, None

    def _completion(
        self, request: CompletionRequest, content: str, finish: FinishReason, stop: str | None = None
    ) -> Completion:
        usage = TokenUsage(input_tokens=_input_tokens(request), output_tokens=count_tokens(content))
        return Completion(
            content=content, finish_reason=finish, usage=usage, served_by=self._served_by(), stop_sequence=stop
        )

    def _tool_completion(self, request: CompletionRequest, call: ToolCall) -> Completion:
        usage = TokenUsage(
            input_tokens=_input_tokens(request), output_tokens=count_tokens(f"{call.name} {call.arguments}")
        )
        return Completion(
            content="",
            finish_reason=FinishReason.TOOL_CALLS,
            usage=usage,
            served_by=self._served_by(),
            tool_calls=(call,),
        )

    def _served_by(self) -> ServedBy:
        return ServedBy(model=self._spec.name, provider="local", upstream_model=self._spec.upstream_model)


def _input_tokens(request: CompletionRequest) -> int:
    tokens = sum(count_tokens(m.content) for m in request.messages)
    tokens += sum(count_tokens(f"{c.name} {c.arguments}") for m in request.messages for c in m.tool_calls)
    return tokens + sum(count_tokens(f"{t.name} {t.description} {t.parameters_json}") for t in request.tools)

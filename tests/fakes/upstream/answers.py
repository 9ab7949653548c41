"""The fake model, the same for both wire formats: a prompt in, a deterministic answer out.

The answer is ``"Echo: <last user message text>"``; after a tool result ``"Tool result: <content>"``; a tool
call for the first tool when tools are given and the last user message contains ``CALL_TOOL`` (or the tool
choice forces a tool). One token is one whitespace-separated word.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from tests.fakes.upstream.behaviours import Behaviour

_PIECE_RE: Final = re.compile(r"\s*\S+")

NewId = Callable[[str], str]
"""Makes the next id with a prefix (``"msg_"``, ``"req_"``, ...)."""


@dataclass(slots=True)
class Prompt:
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
class ToolCall:
    id: str
    name: str
    arguments: Any
    arguments_json: str


@dataclass(slots=True)
class Answer:
    pieces: list[str]
    tool: ToolCall | None
    reason: Literal["end", "length", "stop_sequence", "tool"]
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_creation_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def count_tokens(text: str) -> int:
    """The fake's token count: whitespace-separated words."""
    return len(text.split())


def pieces(text: str) -> list[str]:
    """Split ``text`` into one-word pieces whose concatenation is exactly ``text``."""
    found: list[str] = _PIECE_RE.findall(text)
    tail = text[sum(map(len, found)) :]
    if tail:
        if found:
            found[-1] += tail
        else:
            found.append(tail)
    return found


def split_fixed(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def content_text(content: Any) -> str:
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
                parts.append(content_text(part.get("content")))
            elif kind == "tool_use":
                parts.append(orjson.dumps(part.get("input", {})).decode())
    return " ".join(p for p in parts if p)


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def example_value(schema: Any, depth: int = 0) -> Any:
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
            return example_value(options[0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        return _example_object(schema, depth)
    if kind == "array":
        return [example_value(schema.get("items"), depth + 1)]
    return _SCALAR_EXAMPLES.get(kind, "test") if isinstance(kind, str) else "test"


_SCALAR_EXAMPLES: Final[dict[str, Any]] = {"integer": 1, "number": 1.5, "boolean": True, "null": None}


def _example_object(schema: dict[str, Any], depth: int) -> dict[str, Any]:
    props = schema.get("properties")
    if not isinstance(props, dict):
        return {}
    required = schema.get("required")
    names = [n for n in props if n in required] if isinstance(required, list) else list(props)
    return {name: example_value(props[name], depth + 1) for name in names}


def answer(prompt: Prompt, b: Behaviour, *, new_id: NewId, tool_id_prefix: str) -> Answer:
    """What the fake model says to ``prompt`` under behaviour ``b`` (a tool call, or text)."""
    usage = {
        "input_tokens": prompt.input_tokens,
        "cached_tokens": b.cached_tokens,
        "cache_creation_tokens": b.cache_creation_tokens,
    }
    if b.text is None and not prompt.last_is_tool_result and prompt.tools:
        call = _tool_call(prompt, new_id, tool_id_prefix)
        if call is not None:
            out = count_tokens(call.name) + max(1, count_tokens(call.arguments_json))
            return Answer([], call, "tool", None, output_tokens=out, **usage)
    if b.kind == "huge_body":
        word = "lorem "
        text = (word * (b.n // len(word) + 1))[: max(1, b.n)].rstrip() or "x"
        return Answer(split_fixed(text, 16384), None, "end", None, output_tokens=count_tokens(text), **usage)
    if b.text is not None:
        text = b.text
    elif prompt.last_is_tool_result:
        text = f"Tool result: {prompt.last_text}"
    else:
        text = f"Echo: {prompt.user_text}".rstrip()
    return _text_answer(prompt, text, usage)


def _tool_call(prompt: Prompt, new_id: NewId, tool_id_prefix: str) -> ToolCall | None:
    wanted = prompt.forced_tool
    if wanted is None and prompt.last_role == "user" and "CALL_TOOL" in prompt.last_text:
        wanted = prompt.tools[0][0]
    if wanted is None:
        return None
    schema = next((s for name, s in prompt.tools if name == wanted), None)
    args = example_value(schema if schema is not None else {})
    if not isinstance(args, dict):
        args = {}
    return ToolCall(id=new_id(tool_id_prefix), name=wanted, arguments=args, arguments_json=orjson.dumps(args).decode())


def _text_answer(prompt: Prompt, text: str, usage: dict[str, int]) -> Answer:
    """Cut ``text`` at the first stop sequence, then at ``max_tokens``."""
    reason: Literal["end", "length", "stop_sequence"] = "end"
    stop_sequence: str | None = None
    if prompt.stops:
        hits = [(text.find(s), s) for s in prompt.stops if s in text]
        if hits:
            index, stop_sequence = min(hits)
            text = text[:index]
            reason = "stop_sequence"
    words = pieces(text)
    if prompt.max_tokens is not None and len(words) > prompt.max_tokens:
        words = words[: max(0, prompt.max_tokens)]
        reason, stop_sequence = "length", None
    return Answer(words, None, reason, stop_sequence, output_tokens=max(1, len(words)), **usage)

"""The prompt half of Anthropic's Messages request: the ``system`` parameter, the turns and the tools, with the
caller's prompt-cache breakpoints (``cache_control``) where the caller put them.

System messages go, merged, into ``system``; consecutive turns of one role are merged as the API requires. Tools: a
``ToolDefinition`` is a tool with an ``input_schema``, an assistant's ``ToolCall``s are ``tool_use`` blocks after
its text, and ``TOOL`` messages are ``tool_result`` blocks at the head of the next user turn; ``tool_choice``
required is ``any``, and no parallel calls is ``disable_parallel_tool_use``.

Prompt caching: a message with ``parts`` becomes one text block per part, each keeping its ``cache_control``; a tool
result with a breakpoint carries it on its ``tool_result`` block; a tool on its definition. Without any breakpoint
the prompt is exactly the plain one (texts merged), so nothing changes for callers who do not cache.
"""

from __future__ import annotations

import json
from typing import Any

from domain.llm.model import CacheControl, ChatMessage, ChatRole, CompletionRequest, ToolCall, ToolChoiceMode
from domain.shared.errors import UpstreamRejected

Block = dict[str, Any]


def cache_control(control: CacheControl) -> dict[str, str]:
    """Anthropic's ``cache_control`` object (an ephemeral breakpoint, with its TTL when the caller chose one)."""
    return {"type": "ephemeral", **({"ttl": control.ttl} if control.ttl else {})}


def _arguments(call: ToolCall) -> dict[str, object]:
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UpstreamRejected(f"the arguments of tool call '{call.id}' are not a JSON object", provider="anthropic")
    return value


def _texts(message: ChatMessage) -> list[Block]:
    """The text blocks of a message: one per part when it has parts, else its content (when not empty)."""
    if not message.parts:
        return [{"type": "text", "text": message.content}] if message.content else []
    blocks: list[Block] = []
    for part in message.parts:
        block: Block = {"type": "text", "text": part.text}
        if part.cache_control is not None:
            block["cache_control"] = cache_control(part.cache_control)
        blocks.append(block)
    return blocks


def _last_control(message: ChatMessage) -> CacheControl | None:
    controls = [part.cache_control for part in message.parts if part.cache_control is not None]
    return controls[-1] if controls else None


def _blocks(message: ChatMessage) -> list[Block]:
    """The content blocks of one message: a tool result, or its text then its tool calls."""
    if message.role is ChatRole.TOOL:
        result: Block = {"type": "tool_result", "tool_use_id": message.tool_call_id or "", "content": message.content}
        control = _last_control(message)
        if control is not None:
            result["cache_control"] = cache_control(control)
        return [result]
    blocks = _texts(message)
    blocks.extend({"type": "tool_use", "id": c.id, "name": c.name, "input": _arguments(c)} for c in message.tool_calls)
    return blocks


def _content(blocks: list[Block]) -> str | list[Block]:
    """Plain text when the turn is only text without breakpoints (merged), else its blocks (without empty texts,
    which the API refuses)."""
    if all(block["type"] == "text" and "cache_control" not in block for block in blocks):
        return "\n\n".join(block["text"] for block in blocks)
    return [block for block in blocks if block["type"] != "text" or block["text"]]


def system_prompt(request: CompletionRequest) -> str | list[Block] | None:
    """Every system message, merged into text, or kept as text blocks when one of them holds a breakpoint."""
    systems = [m for m in request.messages if m.role is ChatRole.SYSTEM]
    if any(m.cached for m in systems):
        return [block for m in systems for block in _texts(m) if block["text"]]
    return "\n\n".join(m.content for m in systems) or None


def prompt(request: CompletionRequest) -> tuple[str | list[Block] | None, list[Block]]:
    """The ``system`` parameter and the turns, same-role neighbours merged.

    A tool result is a user turn: it joins the user's next message, the results first, as the API wants.
    """
    turns: list[tuple[str, list[Block]]] = []
    for message in request.messages:
        if message.role is ChatRole.SYSTEM:
            continue
        role = "assistant" if message.role is ChatRole.ASSISTANT else "user"
        blocks = _blocks(message) or [{"type": "text", "text": ""}]
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    messages = [{"role": role, "content": _content(blocks)} for role, blocks in turns]
    return system_prompt(request), messages


def _tool(request: CompletionRequest, index: int) -> Block:
    tool = request.tools[index]
    block: Block = {
        "name": tool.name,
        **({"description": tool.description} if tool.description else {}),
        "input_schema": json.loads(tool.parameters_json),
    }
    if tool.cache_control is not None:
        block["cache_control"] = cache_control(tool.cache_control)
    return block


def tool_params(request: CompletionRequest) -> dict[str, Any]:
    if not request.tools:
        return {}
    tools = [_tool(request, index) for index in range(len(request.tools))]
    choice = request.tool_choice
    if choice is None:
        return {"tools": tools}
    if choice.name is not None:
        tool_choice: dict[str, Any] = {"type": "tool", "name": choice.name}
    else:
        kinds = {ToolChoiceMode.AUTO: "auto", ToolChoiceMode.NONE: "none", ToolChoiceMode.REQUIRED: "any"}
        tool_choice = {"type": kinds[choice.mode]}
    if not choice.parallel and tool_choice["type"] != "none":
        tool_choice["disable_parallel_tool_use"] = True
    return {"tools": tools, "tool_choice": tool_choice}

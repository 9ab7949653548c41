"""The built-in offline provider: deterministic answers derived from the prompt, honest token counts, streaming.

It implements the port for real, so the whole service runs with no key and no network.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator

from domain.llm.model import (
    ChatRole,
    Completion,
    CompletionRequest,
    FinishReason,
    ModelSpec,
    ServedBy,
    StreamEnd,
    StreamEvent,
    TextDelta,
    TokenUsage,
)
from domain.llm.ports import LLMProvider

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


def _reply_tokens(request: CompletionRequest) -> list[str]:
    last_user = next((m.content for m in reversed(request.messages) if m.role is ChatRole.USER), "")
    digest = hashlib.sha256("\x1e".join(m.content for m in request.messages).encode()).digest()
    opener = _OPENERS[digest[0] % len(_OPENERS)]
    text = f"{opener}: you said \u201c{last_user.strip()}\u201d."
    # Pieces keep their leading whitespace so that joining them gives the text back exactly.
    return re.findall(r"\s*\S+", text)


class LocalProvider(LLMProvider):
    def __init__(self, spec: ModelSpec, *, first_token_delay: float = 0.0, chunk_delay: float = 0.0) -> None:
        self._spec = spec
        self._first_token_delay = first_token_delay
        self._chunk_delay = chunk_delay

    async def complete(self, request: CompletionRequest) -> Completion:
        pieces, finish = self._answer(request)
        if self._first_token_delay:
            await asyncio.sleep(self._first_token_delay)
        return self._completion(request, "".join(pieces), finish)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        pieces, finish = self._answer(request)
        if self._first_token_delay:
            await asyncio.sleep(self._first_token_delay)
        for index, piece in enumerate(pieces):
            if index and self._chunk_delay:
                await asyncio.sleep(self._chunk_delay)
            yield TextDelta(piece)
        yield StreamEnd(self._completion(request, "".join(pieces), finish))

    def _answer(self, request: CompletionRequest) -> tuple[list[str], FinishReason]:
        pieces = _reply_tokens(request)
        limit = min(request.max_tokens or self._spec.max_output_tokens, self._spec.max_output_tokens)
        kept: list[str] = []
        used = 0
        for piece in pieces:
            cost = count_tokens(piece)
            if used + cost > limit:
                return kept, FinishReason.LENGTH
            kept.append(piece)
            used += cost
        for stop in request.stop:
            text = "".join(kept)
            if stop and stop in text:
                return [text[: text.index(stop)]], FinishReason.STOP
        return kept, FinishReason.STOP

    def _completion(self, request: CompletionRequest, content: str, finish: FinishReason) -> Completion:
        usage = TokenUsage(
            input_tokens=sum(count_tokens(m.content) for m in request.messages),
            output_tokens=count_tokens(content),
        )
        served = ServedBy(model=self._spec.name, provider="local", upstream_model=self._spec.upstream_model)
        return Completion(content=content, finish_reason=finish, usage=usage, served_by=served)

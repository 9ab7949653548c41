"""Prompt-cache breakpoints (Anthropic's ``cache_control``) as the compatible APIs accept them, and their domain
meaning: a message whose text parts carry a breakpoint keeps its parts (``ChatMessage.parts``); one without any is
plain text, exactly as before."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.llm.model import CacheControl, TextPart


class CacheControlIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None

    def to_domain(self) -> CacheControl:
        return CacheControl(ttl=self.ttl)


def control(value: CacheControlIn | None) -> CacheControl | None:
    return value.to_domain() if value is not None else None


def text_parts(pieces: Sequence[tuple[str, CacheControlIn | None]]) -> tuple[str, tuple[TextPart, ...]]:
    """The text of ``pieces`` joined, and its parts when one of them marks a breakpoint (else none)."""
    content = "".join(text for text, _ in pieces)
    if all(mark is None for _, mark in pieces):
        return content, ()
    return content, tuple(TextPart(text, cache_control=control(mark)) for text, mark in pieces)

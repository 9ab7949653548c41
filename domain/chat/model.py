"""Conversations and their messages."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.llm.model import ChatRole, FinishReason
from domain.shared.errors import RuleViolation
from domain.shared.text import check_storable
from domain.vectors.citations import Citation

MAX_TITLE_LENGTH = 200
MAX_SYSTEM_PROMPT_LENGTH = 32_000
MAX_MESSAGE_LENGTH = 100_000
DEFAULT_TITLE = "New conversation"


class MessageStatus(enum.StrEnum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"  # a stream cut short: the client left or the upstream failed half-way


def clean_title(raw: str | None) -> str:
    title = (raw or "").strip()
    check_storable(title, "title")
    if len(title) > MAX_TITLE_LENGTH:
        raise RuleViolation(f"title must be at most {MAX_TITLE_LENGTH} characters")
    return title or DEFAULT_TITLE


def check_system_prompt(prompt: str | None) -> None:
    if prompt is None:
        return
    if len(prompt) > MAX_SYSTEM_PROMPT_LENGTH:
        raise RuleViolation(f"system prompt must be at most {MAX_SYSTEM_PROMPT_LENGTH} characters")
    check_storable(prompt, "system prompt")


def check_message_content(content: str) -> None:
    if not content.strip():
        raise RuleViolation("message content must not be blank")
    if len(content) > MAX_MESSAGE_LENGTH:
        raise RuleViolation(f"message content must be at most {MAX_MESSAGE_LENGTH} characters")
    check_storable(content, "message content")  # refused before the model is called: its answer could not be stored


@dataclass(kw_only=True)
class Conversation:
    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    model: str
    system_prompt: str | None
    created_at: datetime
    updated_at: datetime
    vector_store_ids: tuple[uuid.UUID, ...] = ()  # its messages are answered with passages from these stores


@dataclass(kw_only=True)
class Message:
    id: uuid.UUID
    conversation_id: uuid.UUID
    role: ChatRole
    content: str
    created_at: datetime
    status: MessageStatus = MessageStatus.COMPLETE
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None  # the public model that answered (assistant messages)
    finish_reason: FinishReason | None = None
    citations: tuple[Citation, ...] = ()  # what an answer cites of its conversation's vector stores


@dataclass(frozen=True, kw_only=True)
class ConversationHistory:
    """A conversation with its newest messages (oldest first) and how many it holds, counted up to a bound."""

    conversation: Conversation
    messages: list[Message]
    message_count: int


@dataclass(frozen=True)
class PageCursor:
    """Position after the last item of a page, newest-first order."""

    created_at: datetime
    id: uuid.UUID

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from application.chat.post_message import PostMessageResult
from application.chat.stream_message import StreamOutcome
from domain.chat.model import (
    MAX_MESSAGE_LENGTH,
    MAX_SYSTEM_PROMPT_LENGTH,
    MAX_TITLE_LENGTH,
    Conversation,
    Message,
    MessageStatus,
)
from domain.llm.model import ChatRole, FinishReason, TokenUsage


class CreateConversationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, max_length=MAX_TITLE_LENGTH)
    model: str | None = Field(None, min_length=1, max_length=200, description="Defaults to the catalog's default.")
    system_prompt: str | None = Field(None, max_length=MAX_SYSTEM_PROMPT_LENGTH)


class UpdateConversationRequest(BaseModel):
    """Only the fields present change; `system_prompt: null` removes the prompt."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, max_length=MAX_TITLE_LENGTH)
    model: str | None = Field(None, min_length=1, max_length=200)
    system_prompt: str | None = Field(None, max_length=MAX_SYSTEM_PROMPT_LENGTH)


class PostMessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=MAX_MESSAGE_LENGTH)
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    stream: bool = Field(
        False, description="Answer as Server-Sent Events (also chosen by `Accept: text/event-stream`)."
    )
    prompt_cache: bool = Field(
        False,
        description="Mark prompt-cache breakpoints after the system prompt and this message, so the next message "
        "reads the conversation from the provider's prompt cache (Anthropic; other providers ignore it).",
    )


class StreamDeltaEvent(BaseModel):
    """Data of an SSE `delta` event."""

    text: str


class ConversationResponse(BaseModel):
    id: uuid.UUID
    title: str
    model: str
    system_prompt: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationResponse:
        return cls(
            id=conversation.id,
            title=conversation.title,
            model=conversation.model,
            system_prompt=conversation.system_prompt,
            created_at=conversation.created_at,
            updated_at=conversation.updated_at,
        )


class MessageResponse(BaseModel):
    id: uuid.UUID
    role: ChatRole
    content: str
    status: MessageStatus
    input_tokens: int
    output_tokens: int
    model: str | None
    finish_reason: FinishReason | None
    created_at: datetime

    @classmethod
    def of(cls, message: Message) -> MessageResponse:
        return cls(
            id=message.id,
            role=message.role,
            content=message.content,
            status=message.status,
            input_tokens=message.input_tokens,
            output_tokens=message.output_tokens,
            model=message.model,
            finish_reason=message.finish_reason,
            created_at=message.created_at,
        )


class ConversationDetailResponse(ConversationResponse):
    messages: list[MessageResponse]


class ConversationPageResponse(BaseModel):
    items: list[ConversationResponse]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class UsageResponse(BaseModel):
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, usage: TokenUsage) -> UsageResponse:
        return cls(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            total_tokens=usage.total_tokens,
        )


class ServedByResponse(BaseModel):
    model: str = Field(description="The public model that answered (after any fallback).")
    provider: str
    upstream_model: str
    variant: str | None
    fallbacks: list[str] = Field(description="Models that failed before this one answered.")


class PostMessageResponse(BaseModel):
    user_message: MessageResponse
    assistant_message: MessageResponse
    usage: UsageResponse
    served_by: ServedByResponse

    @classmethod
    def of(cls, result: PostMessageResult | StreamOutcome) -> PostMessageResponse:
        served = result.completion.served_by
        return cls(
            user_message=MessageResponse.of(result.user_message),
            assistant_message=MessageResponse.of(result.assistant_message),
            usage=UsageResponse.of(result.completion.usage),
            served_by=ServedByResponse(
                model=served.model,
                provider=served.provider,
                upstream_model=served.upstream_model,
                variant=served.variant,
                fallbacks=list(result.completion.fallbacks),
            ),
        )

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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
from domain.files.model import public_file_id
from domain.llm.model import ChatRole, FinishReason, TokenUsage
from domain.vectors.citations import Citation
from domain.vectors.stores import parse_store_id, public_store_id

MAX_STORES = 10
StoreId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
VECTOR_STORES_DESCRIPTION = (
    "Your vector stores (`vs_…`, from `/v1/vector_stores`) its messages are answered from: each message is searched "
    "in them, the passages go to the model, and the answer carries its citations. Someone else's store is a 404."
)


class CreateConversationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, max_length=MAX_TITLE_LENGTH)
    model: str | None = Field(None, min_length=1, max_length=200, description="Defaults to the catalog's default.")
    system_prompt: str | None = Field(None, max_length=MAX_SYSTEM_PROMPT_LENGTH)
    vector_store_ids: list[StoreId] = Field(
        default_factory=list, max_length=MAX_STORES, description=VECTOR_STORES_DESCRIPTION
    )

    def store_ids(self) -> tuple[uuid.UUID, ...]:
        return tuple(parse_store_id(i) for i in self.vector_store_ids)


class UpdateConversationRequest(BaseModel):
    """Only the fields present change; `system_prompt: null` removes the prompt."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, max_length=MAX_TITLE_LENGTH)
    model: str | None = Field(None, min_length=1, max_length=200)
    system_prompt: str | None = Field(None, max_length=MAX_SYSTEM_PROMPT_LENGTH)
    vector_store_ids: list[StoreId] | None = Field(
        None, max_length=MAX_STORES, description=VECTOR_STORES_DESCRIPTION + " `null` or `[]` names none."
    )

    def store_ids(self) -> tuple[uuid.UUID, ...] | None:
        """The stores to name from now on; ``None`` when the field is absent (unchanged)."""
        if "vector_store_ids" not in self.model_fields_set:
            return None
        return tuple(parse_store_id(i) for i in self.vector_store_ids or [])


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


class CitationResponse(BaseModel):
    file_id: str = Field(description="The cited file (`file-…`, from `/v1/files`).")
    filename: str
    position: int = Field(description="The cited chunk's 0-based place in its file.")
    score: float = Field(description="The chunk's search score, in [0, 1].")
    index: int = Field(description="Where in the answer's text the citation stands (its `[n]`, or the end).")

    @classmethod
    def of(cls, citation: Citation) -> CitationResponse:
        return cls(
            file_id=public_file_id(citation.file_id),
            filename=citation.filename,
            position=citation.position,
            score=citation.score,
            index=citation.index,
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
    vector_store_ids: list[str] = Field(description="The vector stores its messages are answered from (`vs_…`).")

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationResponse:
        return cls(
            vector_store_ids=[public_store_id(i) for i in conversation.vector_store_ids],
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
    citations: list[CitationResponse] = Field(
        description="What an answer cites of its conversation's vector stores (empty otherwise)."
    )

    @classmethod
    def of(cls, message: Message) -> MessageResponse:
        return cls(
            citations=[CitationResponse.of(c) for c in message.citations],
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

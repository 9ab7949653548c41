"""What posting a message needs before and after the model answers; shared by the plain and streaming use cases.

The model call happens between two short transactions, never inside one: an LLM answer takes seconds, and a
transaction held open that long would pin a pooled connection and its locks for nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from application.auth.access import require_scope
from application.unit_of_work import UnitOfWorkFactory
from application.usage.context import CachePolicy, CallContext
from domain.auth.model import Principal, Scope
from domain.chat.model import Conversation, Message, MessageStatus, check_message_content
from domain.llm.model import CacheControl, ChatMessage, ChatRole, Completion, CompletionRequest, TextPart
from domain.shared.errors import RuleViolation
from domain.shared.ids import new_id
from domain.shared.text import storable
from domain.vectors.citations import FileSearch


@dataclass(frozen=True, kw_only=True)
class ExchangeLimits:
    """What bounds one exchange: the newest ``history`` messages go to the model; a conversation holds at most
    ``max_messages``."""

    history: int = 200
    max_messages: int = 10_000


@dataclass(frozen=True)
class PostMessageCommand:
    principal: Principal
    conversation_id: uuid.UUID
    content: str
    temperature: float | None = None
    max_tokens: int | None = None
    request_id: str = "-"
    cache: CachePolicy = CachePolicy.DEFAULT
    prompt_cache: bool = False  # mark prompt-cache breakpoints after the system prompt and after this message


@dataclass(frozen=True)
class PreparedExchange:
    conversation: Conversation
    request: CompletionRequest
    user_message: Message
    context: CallContext
    file_search: FileSearch | None = None  # the passages given to the model (``application.chat.file_search``)


async def prepare_exchange(
    uow_factory: UnitOfWorkFactory,
    command: PostMessageCommand,
    *,
    limits: ExchangeLimits,
    now: datetime,
) -> PreparedExchange:
    """Checks the caller may post here and builds the model request from the stored history."""
    require_scope(command.principal, Scope.CHAT)
    check_message_content(command.content)
    # One query (ownership, the newest messages and a bounded count), outside any transaction where the database
    # allows: a single statement reads one snapshot by itself.
    async with uow_factory.for_one_statement() as uow:
        found = await uow.conversations.get_owned_with_history(
            command.conversation_id, command.principal.user_id, limit=limits.history, count_up_to=limits.max_messages
        )
    conversation, history = found.conversation, found.messages
    if found.message_count + 2 > limits.max_messages:
        raise RuleViolation(f"a conversation holds at most {limits.max_messages} messages; start a new one")
    prompt: list[ChatMessage] = []
    if conversation.system_prompt:
        prompt.append(_turn(ChatRole.SYSTEM, conversation.system_prompt, cached=command.prompt_cache))
    prompt.extend(ChatMessage(m.role, m.content) for m in history if m.content)
    prompt.append(_turn(ChatRole.USER, command.content, cached=command.prompt_cache))
    user_message = Message(
        id=new_id(),
        conversation_id=conversation.id,
        role=ChatRole.USER,
        content=command.content,
        created_at=now,
    )
    request = CompletionRequest(
        model=conversation.model,
        messages=tuple(prompt),
        temperature=command.temperature,
        max_tokens=command.max_tokens,
    )
    context = CallContext(
        principal=command.principal,
        request_id=command.request_id,
        conversation_id=conversation.id,
        cache=command.cache,
    )
    return PreparedExchange(conversation=conversation, request=request, user_message=user_message, context=context)


def _turn(role: ChatRole, content: str, *, cached: bool) -> ChatMessage:
    """A message, ending in a prompt-cache breakpoint when ``cached``: the breakpoint after the newest message
    writes the whole conversation to the cache, and the next message reads it back."""
    parts = (TextPart(content, cache_control=CacheControl()),) if cached else ()
    return ChatMessage(role, content, parts=parts)


def assistant_message(
    prepared: PreparedExchange, completion: Completion, *, status: MessageStatus, now: datetime
) -> Message:
    # Strictly after the user message, so ordering by time is ordering by turn even on a coarse clock.
    created_at = max(now, prepared.user_message.created_at + timedelta(microseconds=1))
    return Message(
        id=new_id(),
        conversation_id=prepared.conversation.id,
        role=ChatRole.ASSISTANT,
        content=storable(completion.content),  # an upstream's NUL would make the turn unstorable after it was billed
        created_at=created_at,
        status=status,
        input_tokens=completion.usage.input_tokens,
        output_tokens=completion.usage.output_tokens,
        model=completion.served_by.model,
        finish_reason=completion.finish_reason,
        citations=() if prepared.file_search is None else prepared.file_search.cite(completion.content),
    )


async def store_exchange(
    uow_factory: UnitOfWorkFactory, prepared: PreparedExchange, reply: Message, *, now: datetime
) -> None:
    """Stores both turns and the conversation's ``updated_at`` at once (one statement where the database allows);
    the conversation must still be the caller's (``NotFound`` otherwise, with nothing written)."""
    prepared.user_message.input_tokens = reply.input_tokens
    conversation = prepared.conversation
    async with uow_factory.for_one_statement() as uow:
        await uow.conversations.add_turns(conversation.id, conversation.owner_id, now, prepared.user_message, reply)
        await uow.commit()

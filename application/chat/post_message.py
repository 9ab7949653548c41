from __future__ import annotations

from dataclasses import dataclass

from application.chat.exchange import (
    ExchangeLimits,
    PostMessageCommand,
    assistant_message,
    prepare_exchange,
    store_exchange,
)
from application.chat.file_search import ground_exchange
from application.llm.model_call import ModelCall
from application.unit_of_work import UnitOfWorkFactory
from application.usage.response_cache import CacheStatus
from application.vectors.file_search import FileSearchRetrieval
from domain.chat.model import Message, MessageStatus
from domain.llm.model import Completion
from domain.shared.clock import Clock


@dataclass(frozen=True)
class PostMessageResult:
    user_message: Message
    assistant_message: Message
    completion: Completion
    cache_status: CacheStatus = CacheStatus.BYPASS


class PostMessage:
    """Sends the conversation so far plus the new message to its model and stores both turns in one transaction."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        model_call: ModelCall,
        clock: Clock,
        limits: ExchangeLimits | None = None,
        retrieval: FileSearchRetrieval | None = None,
    ) -> None:
        self._uow = uow
        self._model_call = model_call
        self._clock = clock
        self._limits = limits or ExchangeLimits()
        self._retrieval = retrieval

    async def execute(self, command: PostMessageCommand) -> PostMessageResult:
        prepared = await prepare_exchange(self._uow, command, limits=self._limits, now=self._clock.now())
        if prepared.conversation.vector_store_ids:  # only then: the path without stores stays as it was
            prepared = await ground_exchange(self._retrieval, prepared, command)
        answer = await self._model_call.complete(prepared.request, prepared.context)
        now = self._clock.now()
        reply = assistant_message(prepared, answer.completion, status=MessageStatus.COMPLETE, now=now)
        await store_exchange(self._uow, prepared, reply, now=now)
        return PostMessageResult(
            user_message=prepared.user_message,
            assistant_message=reply,
            completion=answer.completion,
            cache_status=answer.cache_status,
        )

from __future__ import annotations

from dataclasses import dataclass

from application.chat.exchange import (
    PostMessageCommand,
    assistant_message,
    prepare_exchange,
    store_exchange,
)
from application.llm.gateway import CacheStatus, LLMGateway
from application.unit_of_work import UnitOfWorkFactory
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

    def __init__(self, *, uow: UnitOfWorkFactory, gateway: LLMGateway, clock: Clock, history_limit: int = 200) -> None:
        self._uow = uow
        self._gateway = gateway
        self._clock = clock
        self._history_limit = history_limit

    async def execute(self, command: PostMessageCommand) -> PostMessageResult:
        prepared = await prepare_exchange(self._uow, command, history_limit=self._history_limit, now=self._clock.now())
        completion = await self._gateway.complete(prepared.request, prepared.context)
        now = self._clock.now()
        reply = assistant_message(prepared, completion, status=MessageStatus.COMPLETE, now=now)
        async with self._uow() as uow:
            await store_exchange(uow, prepared, reply, now=now)
            await uow.commit()
        return PostMessageResult(
            user_message=prepared.user_message,
            assistant_message=reply,
            completion=completion,
            cache_status=self._gateway.cache_status(prepared.request, prepared.context, completion),
        )

"""What creating a response needs before the model is asked, shared by the whole and the streamed use cases.

The previous response (``previous_response_id``) is read in a short transaction of its own; the model is called
outside any; the response is stored in one more (see ``application.chat.exchange`` for why).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from application.auth.access import require_scope
from application.unit_of_work import UnitOfWorkFactory
from application.usage.context import CachePolicy, CallContext
from application.vectors.file_search import FileSearchTool
from domain.auth.model import Principal, Scope
from domain.llm.model import ChatMessage, CompletionRequest
from domain.responses.model import ResponseRecord, ResponseStatus
from domain.shared.errors import Conflict
from domain.shared.ids import new_id


@dataclass(frozen=True)
class ResponseCommand:
    """``request`` carries this request's own input as its messages and the call's settings; ``instructions``
    come first, then the conversation of ``previous_response_id``, then the input."""

    principal: Principal
    request: CompletionRequest
    instructions: str | None = None
    previous_response_id: uuid.UUID | None = None
    store: bool = True
    settings_json: str = "{}"  # the request's settings as the API echoes them
    request_id: str = "-"
    cache: CachePolicy = CachePolicy.DEFAULT
    file_search: FileSearchTool | None = None  # searched before the model call (``application.responses.file_search``)


@dataclass(frozen=True)
class PreparedResponse:
    record: ResponseRecord  # in progress: the output comes later
    request: CompletionRequest  # what the model is asked: instructions, history, input
    context: CallContext


async def prepare_response(uow: UnitOfWorkFactory, command: ResponseCommand, *, now: datetime) -> PreparedResponse:
    require_scope(command.principal, Scope.CHAT)
    history: tuple[ChatMessage, ...] = ()
    if command.previous_response_id is not None:
        async with uow() as work:
            previous = await work.responses.get_owned(command.previous_response_id, command.principal.user_id)
        history = previous.conversation()
    record = ResponseRecord(
        id=new_id(),
        owner_id=command.principal.user_id,
        model=command.request.model,
        status=ResponseStatus.IN_PROGRESS,
        created_at=now,
        previous_response_id=command.previous_response_id,
        instructions=command.instructions,
        history=history,
        input=command.request.messages,
        settings_json=command.settings_json,
    )
    request = replace(command.request, messages=record.messages())
    context = CallContext(principal=command.principal, request_id=command.request_id, cache=command.cache)
    return PreparedResponse(record=record, request=request, context=context)


async def store_response(uow: UnitOfWorkFactory, record: ResponseRecord) -> None:
    async with uow() as work:
        await work.responses.add(record)
        await work.commit()


async def update_if(uow: UnitOfWorkFactory, record: ResponseRecord, status: ResponseStatus) -> bool:
    """Stores ``record`` only while the stored response is in ``status`` (see ``ResponseRepository.update_if``)."""
    async with uow() as work:
        try:
            if not await work.responses.update_if(record, status):
                return False
            await work.commit()
        except Conflict:  # moved on by a concurrent commit
            return False
    return True

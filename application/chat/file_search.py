"""Conversations answered from vector stores: the stores a conversation names, and the passages its messages get.

A conversation may name up to ten of its owner's vector stores (``vector_store_ids``; someone else's, or a missing
one, is a 404 as on ``/v1/vector_stores``). Each message posted to it is answered as ``file_search`` answers on any
model (``application.vectors.file_search``): the message searched, the passages given to the model, and the stored
answer keeps its citations. A conversation naming no store never comes here: its path is unchanged.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from application.chat.exchange import PostMessageCommand, PreparedExchange
from application.unit_of_work import UnitOfWork
from application.vectors.access import live_store
from application.vectors.file_search import FileSearchRetrieval, FileSearchTool
from application.vectors.search_vector_stores import MAX_STORES
from domain.shared.errors import NotFound, RuleViolation

PASSAGES_PER_MESSAGE = 8


async def checked_stores(
    uow: UnitOfWork, store_ids: tuple[uuid.UUID, ...], owner_id: uuid.UUID, now: datetime
) -> tuple[uuid.UUID, ...]:
    """The stores, once each, all the owner's and live (a 404 for any other)."""
    unique = tuple(dict.fromkeys(store_ids))
    if len(unique) > MAX_STORES:
        raise RuleViolation(f"vector_store_ids: at most {MAX_STORES} vector stores")
    for store_id in unique:
        await live_store(uow, store_id, owner_id, now)
    return unique


async def ground_exchange(
    retrieval: FileSearchRetrieval | None, prepared: PreparedExchange, command: PostMessageCommand
) -> PreparedExchange:
    """The exchange with the passages in its request and the search kept for the answer's citations."""
    store_ids = prepared.conversation.vector_store_ids
    if not store_ids:
        return prepared
    if retrieval is None:
        raise RuleViolation("this conversation names vector stores, and this server has none")
    tool = FileSearchTool(store_ids=store_ids, max_num_results=PASSAGES_PER_MESSAGE)
    try:
        grounded = await retrieval.ground(
            prepared.request, tool, principal=command.principal, request_id=command.request_id
        )
    except NotFound as exc:  # a store deleted since it was named: the conversation must be told, not broken
        raise RuleViolation(f"{exc.detail}; update the conversation's vector_store_ids") from exc
    return replace(prepared, request=grounded.request, file_search=grounded.search)

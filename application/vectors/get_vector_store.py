"""One of the caller's vector stores."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.unit_of_work import UnitOfWorkFactory
from application.vectors.access import StoreView, owned_store, require_vectors_scope, view
from domain.auth.model import Principal
from domain.shared.clock import Clock


@dataclass(frozen=True)
class StoreQuery:
    principal: Principal
    store_id: uuid.UUID


class GetVectorStore:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, query: StoreQuery) -> StoreView:
        require_vectors_scope(query.principal)
        async with self._uow() as uow:
            store = await owned_store(uow, query.store_id, query.principal.user_id)
            return await view(uow, store, self._clock.now())

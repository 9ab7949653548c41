"""Rename a store, replace its metadata or its expiry policy (each only when given)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.unit_of_work import UnitOfWorkFactory
from application.vectors.access import StoreView, owned_store, require_vectors_scope, view
from application.vectors.create_vector_store import check_name
from domain.auth.model import Principal
from domain.shared.clock import Clock
from domain.vectors.stores import check_expiry_days, check_metadata


@dataclass(frozen=True, kw_only=True)
class UpdateVectorStoreCommand:
    principal: Principal
    store_id: uuid.UUID
    name: str | None = None
    metadata: dict[str, str] | None = None
    expires_after_days: int | None = None
    change_expiry: bool = False  # ``expires_after`` was sent (``null`` removes the policy)


class UpdateVectorStore:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, command: UpdateVectorStoreCommand) -> StoreView:
        require_vectors_scope(command.principal)
        now = self._clock.now()
        async with self._uow() as uow:
            store = await owned_store(uow, command.store_id, command.principal.user_id)
            if command.name is not None:
                store.name = check_name(command.name)
            if command.metadata is not None:
                store.metadata = check_metadata(command.metadata)
            if command.change_expiry:
                store.expires_after_days = check_expiry_days(command.expires_after_days)
            store.last_active_at = now
            await uow.vector_stores.update(store)
            shown = await view(uow, store, now)
            await uow.commit()
        return shown

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.auth.access import require_scope
from application.auth.principal_cache import PrincipalCache
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal, Scope
from domain.shared.clock import Clock
from domain.shared.errors import NotFound


@dataclass(frozen=True)
class RevokeApiKeyCommand:
    principal: Principal
    key_id: uuid.UUID


class RevokeApiKey:
    """Revoking is idempotent; someone else's key is ``NotFound``, exactly like a missing one."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, principals: PrincipalCache | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._principals = principals

    async def execute(self, command: RevokeApiKeyCommand) -> None:
        require_scope(command.principal, Scope.KEYS)
        async with self._uow() as uow:
            key = await uow.api_keys.find(command.key_id)
            if key is None or key.owner_id != command.principal.user_id:
                raise NotFound("API key not found")
            if key.revoked_at is None:
                key.revoked_at = self._clock.now()
                await uow.api_keys.update(key)
                await uow.commit()
        if self._principals is not None:
            self._principals.invalidate_key(command.key_id)

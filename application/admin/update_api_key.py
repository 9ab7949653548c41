from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from application.auth.access import require_admin
from application.auth.principal_cache import PrincipalCache
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import ApiKey, Principal
from domain.shared.errors import NotFound
from domain.usage.model import LimitsPatch


@dataclass(frozen=True)
class UpdateApiKeyCommand:
    principal: Principal
    key_id: uuid.UUID
    limits: LimitsPatch = field(default_factory=LimitsPatch)


class UpdateApiKey:
    """An admin sets an API key's budget and rate limits. Only an admin: an owner must not raise their own budget."""

    def __init__(self, *, uow: UnitOfWorkFactory, principals: PrincipalCache | None = None) -> None:
        self._uow = uow
        self._principals = principals

    async def execute(self, command: UpdateApiKeyCommand) -> ApiKey:
        require_admin(command.principal)
        async with self._uow() as uow:
            key = await uow.api_keys.find(command.key_id)
            if key is None:
                raise NotFound("API key not found")
            key.limits = command.limits.apply(key.limits)
            await uow.api_keys.update(key)
            await uow.commit()
        if self._principals is not None:
            self._principals.invalidate_key(key.id)
        return key

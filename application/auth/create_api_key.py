from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from application.auth.access import require_scope
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.api_keys import generate_api_key
from domain.auth.model import ApiKey, Principal, Scope
from domain.shared.clock import Clock
from domain.shared.errors import Forbidden, RuleViolation
from domain.shared.ids import new_id
from domain.shared.text import check_storable

MAX_KEY_NAME_LENGTH = 100


@dataclass(frozen=True)
class CreateApiKeyCommand:
    principal: Principal
    name: str
    scopes: frozenset[Scope]
    expires_at: datetime | None = None


@dataclass(frozen=True)
class CreatedApiKey:
    key: ApiKey
    plaintext: str  # returned once, never stored


class CreateApiKey:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, max_keys_per_user: int) -> None:
        self._uow = uow
        self._clock = clock
        self._max_keys = max_keys_per_user

    async def execute(self, command: CreateApiKeyCommand) -> CreatedApiKey:
        principal = command.principal
        require_scope(principal, Scope.KEYS)
        name = command.name.strip()
        if not name or len(name) > MAX_KEY_NAME_LENGTH:
            raise RuleViolation(f"name must be 1 to {MAX_KEY_NAME_LENGTH} characters")
        check_storable(name, "name")
        if not command.scopes:
            raise RuleViolation("a key needs at least one scope")
        if not command.scopes <= principal.scopes:
            extra = ", ".join(sorted(command.scopes - principal.scopes))
            raise Forbidden(f"cannot grant scopes you do not hold: {extra}")
        now = self._clock.now()
        if command.expires_at is not None and command.expires_at <= now:
            raise RuleViolation("expires_at must be in the future")
        material = generate_api_key()
        key = ApiKey(
            id=new_id(),
            owner_id=principal.user_id,
            name=name,
            scopes=command.scopes,
            prefix=material.prefix,
            key_hash=material.key_hash,
            created_at=now,
            expires_at=command.expires_at,
        )
        async with self._uow() as uow:
            if await uow.api_keys.count_active_by_owner(principal.user_id, now) >= self._max_keys:
                raise RuleViolation(f"at most {self._max_keys} active API keys per user")
            await uow.api_keys.add(key)
            await uow.commit()
        return CreatedApiKey(key=key, plaintext=material.plaintext)

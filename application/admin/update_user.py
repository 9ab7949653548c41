from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from application.admin.audit import record_change, user_view
from application.auth.access import require_admin
from application.auth.principal_cache import PrincipalCache
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal, Role, User
from domain.shared.clock import Clock
from domain.shared.errors import RuleViolation
from domain.usage.model import LimitsPatch


@dataclass(frozen=True)
class UpdateUserCommand:
    principal: Principal
    user_id: uuid.UUID
    role: Role | None = None
    is_active: bool | None = None
    limits: LimitsPatch = field(default_factory=LimitsPatch)
    request_id: str | None = None


class UpdateUser:
    """An admin changes a user's role, budget or rate limits, or deactivates them. Deactivation ends their sessions
    at once; new limits apply from the user's next request.

    Admins cannot demote or deactivate themselves, so the service is never left without an administrator by accident.
    A change is written to the audit trail in the same transaction.
    """

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, principals: PrincipalCache | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._principals = principals

    async def execute(self, command: UpdateUserCommand) -> User:
        require_admin(command.principal)
        is_self = command.user_id == command.principal.user_id
        if is_self and (command.role not in (None, Role.ADMIN) or command.is_active is False):
            raise RuleViolation("administrators cannot demote or deactivate themselves")
        now = self._clock.now()
        async with self._uow() as uow:
            user = await uow.users.get(command.user_id)
            before = user_view(user)
            if command.role is not None:
                user.role = command.role
            user.limits = command.limits.apply(user.limits)
            if command.is_active is not None:
                user.is_active = command.is_active
                if not command.is_active:
                    await uow.refresh_tokens.revoke_all_for_user(user.id, now)
            user.updated_at = now
            await uow.users.update(user)
            if user_view(user) != before:
                await record_change(
                    uow,
                    principal=command.principal,
                    action="user.update",
                    target_type="user",
                    target_id=user.id,
                    before=before,
                    after=user_view(user),
                    at=now,
                    request_id=command.request_id,
                )
            await uow.commit()
        if self._principals is not None:
            self._principals.invalidate_user(user.id)
        return user

"""Whose credentials a call may touch, and the audit row of a change (every change: a user's own or an admin's)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from application.auth.access import require_admin, require_scope
from application.unit_of_work import UnitOfWork
from domain.audit.model import AuditEntry
from domain.auth.model import Principal, Scope
from domain.credentials.errors import ProviderNotSupported
from domain.credentials.model import MAX_PROVIDER_LENGTH, ProviderCredential
from domain.shared.errors import NotFound
from domain.shared.ids import new_id

_PROVIDER = re.compile(rf"[a-z][a-z0-9_]{{0,{MAX_PROVIDER_LENGTH - 1}}}")


def owner_of(principal: Principal, user_id: uuid.UUID | None) -> uuid.UUID:
    """The user whose credentials are meant: the caller's own (the ``keys`` scope), or, for an administrator, any
    user's (``user_id``)."""
    require_scope(principal, Scope.KEYS)
    if user_id is None or user_id == principal.user_id:
        return principal.user_id
    require_admin(principal)
    return user_id


def check_provider(provider: str) -> str:
    if not _PROVIDER.fullmatch(provider):
        raise ProviderNotSupported(f"'{provider[:40]}' is not a provider name")
    return provider


async def require_user(uow: UnitOfWork, user_id: uuid.UUID) -> None:
    if await uow.users.find(user_id) is None:
        raise NotFound("user not found")


def credential_view(credential: ProviderCredential) -> dict[str, str]:
    """What an audit row shows of a credential: its provider, hint and key id; never the secret."""
    return {"provider": credential.provider, "hint": credential.hint, "key_id": credential.sealed.key_id}


async def audit(
    uow: UnitOfWork,
    principal: Principal,
    action: str,
    credential: ProviderCredential,
    *,
    before: ProviderCredential | None,
    after: ProviderCredential | None,
    at: datetime,
) -> None:
    await uow.audit_log.add(
        AuditEntry(
            id=new_id(),
            occurred_at=at,
            actor_id=principal.user_id,
            actor_api_key_id=principal.api_key_id,
            action=action,
            target_type="provider_credential",
            target_id=f"{credential.user_id}/{credential.provider}",
            before=None if before is None else credential_view(before),
            after=None if after is None else credential_view(after),
        )
    )

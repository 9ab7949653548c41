"""Recording an admin change in the audit trail, inside the change's own unit of work.

Every admin use case does the same three steps: snapshot the target, change it, then ``record_change`` before its
one commit, so the change and its audit row are stored together or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from application.unit_of_work import UnitOfWork
from domain.audit.model import AuditEntry, changed_fields
from domain.auth.model import Principal, User
from domain.shared.ids import new_id


def user_view(user: User) -> dict[str, Any]:
    """What an audit row may show of a user: never a password hash."""
    return {"email": user.email, "role": user.role.value, "is_active": user.is_active}


async def record_change(
    uow: UnitOfWork,
    *,
    principal: Principal,
    action: str,
    target_type: str,
    target_id: object,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    at: datetime,
    request_id: str | None = None,
) -> AuditEntry:
    if before is not None and after is not None:
        before, after = changed_fields(before, after)
    entry = AuditEntry(
        id=new_id(),
        occurred_at=at,
        actor_id=principal.user_id,
        actor_api_key_id=principal.api_key_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before,
        after=after,
        request_id=request_id,
    )
    await uow.audit_log.add(entry)
    return entry

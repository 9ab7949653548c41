"""On whose behalf a batch's lines run: its owner, through the API key it was created with, as they are now.

Read again for each chunk, so a key revoked (or an owner deactivated) mid-batch stops the lines that have not run,
and limits an administrator changed apply at once.
"""

from __future__ import annotations

from datetime import datetime

from application.unit_of_work import UnitOfWork
from domain.auth.model import Principal, Scope
from domain.batches.model import Batch
from domain.shared.errors import Unauthenticated

CREDENTIAL_GONE = "the batch's credential was revoked, expired or lost its chat scope, or its owner was deactivated"


async def batch_principal(uow: UnitOfWork, batch: Batch, now: datetime) -> Principal:
    user = await uow.users.find(batch.owner_id)
    if user is None or not user.is_active:
        raise Unauthenticated(CREDENTIAL_GONE)
    allowed = Scope.for_role(user.role)
    if batch.api_key_id is None:
        return Principal(user_id=user.id, role=user.role, scopes=allowed, user_limits=user.limits)
    key = await uow.api_keys.find(batch.api_key_id)
    if key is None or not key.is_usable(now) or Scope.CHAT not in key.scopes:
        raise Unauthenticated(CREDENTIAL_GONE)
    return Principal(
        user_id=user.id,
        role=user.role,
        scopes=key.scopes & allowed,
        api_key_id=key.id,
        user_limits=user.limits,
        key_limits=key.limits,
    )

"""A stored response of the caller's (``GET /v1/responses/{id}`` and its ``input_items``)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from application.auth.access import require_scope
from application.responses.prepare import update_if
from application.responses.run_background_response import INTERRUPTED
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal, Scope
from domain.responses.model import ResponseRecord, ResponseStatus
from domain.shared.clock import Clock


class GetResponse:
    """A background response whose runner died (silent past the lease) is marked failed when it is read: so a
    crash leaves no response in progress forever, whichever queue ran it."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, lease_seconds: float = 30.0) -> None:
        self._uow = uow
        self._clock = clock
        self._lease = timedelta(seconds=lease_seconds)

    async def execute(self, principal: Principal, response_id: uuid.UUID) -> ResponseRecord:
        require_scope(principal, Scope.CHAT)
        async with self._uow() as uow:
            record = await uow.responses.get_owned(response_id, principal.user_id)
        now = self._clock.now()
        if record.abandoned(now, self._lease):
            record.fail(code="server_error", message=INTERRUPTED, partial=None, at=now)
            if not await update_if(self._uow, record, ResponseStatus.IN_PROGRESS):  # it beat meanwhile after all
                return await self.execute(principal, response_id)
        return record

"""``POST /v1/responses/{id}/cancel``: stops a background response of the caller's that has not finished.

The response is marked ``cancelled`` at once; its job sees it at its next heartbeat and closes the model call (settled
as cancelled, with what it had produced, which the response keeps). Cancelling a cancelled response answers it
again; one that finished otherwise, or that was not a background response, cannot be cancelled (400, as OpenAI)."""

from __future__ import annotations

import uuid

from application.auth.access import require_scope
from application.responses.prepare import update_if
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal, Scope
from domain.responses.model import ResponseRecord, ResponseStatus
from domain.shared.clock import Clock
from domain.shared.errors import RuleViolation

NOT_BACKGROUND = "Only responses created with background set to true can be cancelled."
FINISHED = "Cannot cancel a completed response."


class CancelResponse:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, principal: Principal, response_id: uuid.UUID) -> ResponseRecord:
        require_scope(principal, Scope.CHAT)
        while True:
            async with self._uow() as uow:
                record = await uow.responses.get_owned(response_id, principal.user_id)
            if not record.background:
                raise RuleViolation(NOT_BACKGROUND)
            if record.status is ResponseStatus.CANCELLED:
                return record
            if record.status.finished:
                raise RuleViolation(FINISHED)
            was = record.status
            record.cancel(partial=None, at=self._clock.now())
            if await update_if(self._uow, record, was):
                return record
            # its job moved it on meanwhile (started, or finished): look again

"""One of the caller's batches, of the kind its front door serves; someone else's is as missing as none."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.files.access import require_files_scope
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal
from domain.batches.errors import BatchNotFound
from domain.batches.model import Batch, BatchKind, public_batch_id


@dataclass(frozen=True)
class BatchQuery:
    principal: Principal
    batch_id: uuid.UUID
    kind: BatchKind = BatchKind.OPENAI


class GetBatch:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, query: BatchQuery) -> Batch:
        require_files_scope(query.principal)
        async with self._uow() as uow:
            found = await uow.batches.find_owned(query.batch_id, query.principal.user_id, query.kind)
        if found is None:
            raise BatchNotFound(f"no such batch: '{public_batch_id(query.batch_id, query.kind)}'")
        return found

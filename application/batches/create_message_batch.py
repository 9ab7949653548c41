"""Create an Anthropic message batch from its inline requests (``requests: [{custom_id, params}]``).

The requests are checked at once, before anything is stored, as ``POST /v1/messages`` would check each (schema,
model, the pipeline's own checks): one bad request refuses the whole batch with a 400 naming it by index and
``custom_id``. A batch that passes is stored ``in_progress`` with its lines and the jobs that run it, in one commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from application.batches.admission import CheckedLine, RawLine, check_lines
from application.batches.config import BatchLimits
from application.batches.lines import LineCall, LineCodec
from application.batches.start import start_batch
from application.files.access import require_files_scope
from application.llm.model_call import ModelCall
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal
from domain.batches.model import COMPLETION_WINDOWS, Batch, BatchKind, BatchStatus
from domain.shared.clock import Clock
from domain.shared.errors import RuleViolation
from domain.shared.ids import new_id

MESSAGES = "/v1/messages"
WINDOW = "24h"  # a message batch always has 24 hours, as Anthropic's do
ERRORS_SHOWN = 5  # the refusal names this many bad requests (and says how many more there are)


@dataclass(frozen=True)
class MessageBatchRequest:
    custom_id: str
    params: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class CreateMessageBatchCommand:
    principal: Principal
    requests: Sequence[MessageBatchRequest]


class CreateMessageBatch:
    def __init__(
        self, *, uow: UnitOfWorkFactory, codec: LineCodec, model_call: ModelCall, clock: Clock, limits: BatchLimits
    ) -> None:
        self._uow = uow
        self._codec = codec
        self._model_call = model_call
        self._clock = clock
        self._limits = limits

    async def execute(self, command: CreateMessageBatchCommand) -> Batch:
        require_files_scope(command.principal)
        lines = await asyncio.to_thread(self._check, command.requests)
        now = self._clock.now()
        batch = Batch(
            id=new_id(),
            owner_id=command.principal.user_id,
            api_key_id=command.principal.api_key_id,
            kind=BatchKind.ANTHROPIC,
            endpoint=MESSAGES,
            completion_window=WINDOW,
            status=BatchStatus.VALIDATING,
            created_at=now,
            expires_at=now + COMPLETION_WINDOWS[WINDOW],
        )
        async with self._uow() as uow:
            await uow.batches.add(batch)
            await start_batch(uow, batch, lines, now=now, limits=self._limits)
            await uow.commit()
        async with self._uow() as uow:
            return await uow.batches.get(batch.id)  # with its line counts

    def _check(self, requests: Sequence[MessageBatchRequest]) -> list[CheckedLine]:
        raw = [
            RawLine(i + 1, r.custom_id, MESSAGES, r.params, label=f"requests[{i}] (custom_id '{r.custom_id[:64]}')")
            for i, r in enumerate(requests)
        ]
        checked, errors = check_lines(
            raw, endpoint=MESSAGES, codec=self._codec, check_call=self._check_call, max_lines=self._limits.max_lines
        )
        if errors:
            message = "; ".join(e.message for e in errors[:ERRORS_SHOWN])
            if len(errors) > ERRORS_SHOWN:
                message += f" (and {len(errors) - ERRORS_SHOWN} more invalid requests)"
            raise RuleViolation(message)
        return checked

    def _check_call(self, call: LineCall) -> None:
        """What the model-call pipeline checks before any call: the model exists and takes this request."""
        if call.completion is not None:
            self._model_call.check(call.completion)

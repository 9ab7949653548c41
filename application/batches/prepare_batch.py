"""The job that checks a new OpenAI batch's input file and starts it, or fails it with ``errors`` naming the lines.

Idempotent: it acts only on a batch still ``validating``, and the check and the start commit together.
"""

from __future__ import annotations

import asyncio
import uuid

from application.batches.admission import CheckedLine, check_lines, read_jsonl
from application.batches.config import BatchLimits
from application.batches.lines import LineCall, LineCodecs
from application.batches.start import start_batch
from application.llm.model_call import ModelCall
from application.unit_of_work import UnitOfWorkFactory
from domain.batches.model import BatchError, BatchStatus
from domain.files.errors import FileNotFound
from domain.files.ports import BlobStore
from domain.shared.clock import Clock


class PrepareBatch:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        blobs: BlobStore,
        model_call: ModelCall,
        codecs: LineCodecs,
        clock: Clock,
        limits: BatchLimits,
    ) -> None:
        self._uow = uow
        self._blobs = blobs
        self._model_call = model_call
        self._codecs = codecs
        self._clock = clock
        self._limits = limits

    async def execute(self, batch_id: uuid.UUID) -> None:
        async with self._uow() as uow:
            batch = await uow.batches.get(batch_id)
        if batch.status is not BatchStatus.VALIDATING or batch.input_file_id is None:
            return
        lines: list[CheckedLine] = []
        try:
            data = await self._blobs.get(str(batch.input_file_id))
        except FileNotFound:
            errors = [BatchError(code="file_not_found", message="the input file is gone", param="input_file_id")]
        else:
            lines, errors = await asyncio.to_thread(self._check, data, batch.endpoint)
        async with self._uow() as uow:
            batch = await uow.batches.get(batch_id, lock=True)
            if batch.status is not BatchStatus.VALIDATING:
                return  # cancelled meanwhile, or prepared by another run of this job
            now = self._clock.now()
            if errors:
                batch.fail(tuple(errors), now)
                await uow.batches.update(batch)
            else:
                await start_batch(uow, batch, lines, now=now, limits=self._limits)
            await uow.commit()

    def _check(self, data: bytes, endpoint: str) -> tuple[list[CheckedLine], list[BatchError]]:
        raw, errors = read_jsonl(data)
        return check_lines(
            raw,
            endpoint=endpoint,
            codec=self._codecs[endpoint],
            check_call=self.check_call,
            max_lines=self._limits.max_lines,
            earlier_errors=errors,
        )

    def check_call(self, call: LineCall) -> None:
        """What the model-call pipeline checks before any call: the model exists and takes this request."""
        if call.embedding is not None:
            self._model_call.check_embedding(call.embedding)
        elif call.response is not None:
            self._model_call.check(call.response.request)
        elif call.completion is not None:
            self._model_call.check(call.completion)

"""Create an OpenAI batch from an uploaded JSONL file: the batch is stored ``validating`` and its lines are checked
by a job (``PrepareBatch``), enqueued in the same commit, as OpenAI's batches are checked after creation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from application.batches.config import TASK_PREPARE
from application.batches.lines import LineCodecs
from application.files.access import live_file, require_files_scope
from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import Principal
from domain.batches.model import COMPLETION_WINDOWS, Batch, BatchKind, BatchStatus
from domain.files.model import FilePurpose, parse_file_id
from domain.jobs.model import Job
from domain.shared.clock import Clock
from domain.shared.errors import RuleViolation
from domain.shared.ids import new_id

MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


@dataclass(frozen=True, kw_only=True)
class CreateBatchCommand:
    principal: Principal
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: Mapping[str, str] = field(default_factory=dict)


class CreateBatch:
    def __init__(self, *, uow: UnitOfWorkFactory, codecs: LineCodecs, clock: Clock) -> None:
        self._uow = uow
        self._codecs = codecs
        self._clock = clock

    async def execute(self, command: CreateBatchCommand) -> Batch:
        require_files_scope(command.principal)
        check_batch_settings(command.endpoint, command.completion_window, command.metadata, self._codecs)
        file_id = parse_file_id(command.input_file_id)
        now = self._clock.now()
        batch = Batch(
            id=new_id(),
            owner_id=command.principal.user_id,
            api_key_id=command.principal.api_key_id,
            kind=BatchKind.OPENAI,
            endpoint=command.endpoint,
            completion_window=command.completion_window,
            status=BatchStatus.VALIDATING,
            created_at=now,
            expires_at=now + COMPLETION_WINDOWS[command.completion_window],
            input_file_id=file_id,
            metadata=dict(command.metadata),
        )
        async with self._uow() as uow:
            file = await live_file(uow, file_id, command.principal.user_id, now)
            if file.purpose is not FilePurpose.BATCH:
                raise RuleViolation(f"input_file_id: file '{file.public_id}' has purpose '{file.purpose}', not 'batch'")
            await uow.batches.add(batch)
            await uow.jobs.enqueue(Job(TASK_PREPARE, {"batch_id": str(batch.id)}))
            await uow.commit()
        return batch


def check_batch_settings(
    endpoint: str, completion_window: str, metadata: Mapping[str, str], codecs: LineCodecs
) -> None:
    if endpoint not in codecs:
        supported = ", ".join(sorted(codecs))
        raise RuleViolation(f"endpoint: '{endpoint[:100]}' is not supported; use one of {supported}")
    if completion_window not in COMPLETION_WINDOWS:
        raise RuleViolation(f"completion_window: must be one of {', '.join(COMPLETION_WINDOWS)}")
    if len(metadata) > MAX_METADATA_PAIRS:
        raise RuleViolation(f"metadata: at most {MAX_METADATA_PAIRS} pairs")
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY or len(value) > MAX_METADATA_VALUE:
            raise RuleViolation(
                f"metadata: keys of at most {MAX_METADATA_KEY} characters, values of at most {MAX_METADATA_VALUE}"
            )

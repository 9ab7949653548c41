"""Batches: many model calls (lines) submitted at once and run by workers, whatever API they came through.

An OpenAI batch (a JSONL file of ``{custom_id, method, url, body}``) and an Anthropic message batch
(``requests: [{custom_id, params}]``) are the same thing here: a ``Batch`` of ``BatchLine`` s, each a request body
for one endpoint, run through the one model-call pipeline, its result kept on the line. Only the front door (how
the lines arrive) and the rendering of the results differ (``kind``).

The database is the source of truth for the state of a batch and of each line; the job queue only says which batch
to look at. A line is claimed by a worker for a lease (``claimed_until``); a line whose lease ran out goes back to
the others, so a killed worker loses nothing, and its result is written only by the claim that holds it, so each
line has exactly one result.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.batches.errors import BatchNotCancellable, BatchNotEnded, BatchNotFound

PUBLIC_PREFIX = "batch_"
MESSAGE_BATCH_PREFIX = "msgbatch_"  # Anthropic's message batches
LINE_PREFIX = "batch_req_"
COMPLETION_WINDOWS = {"24h": timedelta(hours=24)}
MAX_CUSTOM_ID_LENGTH = 512
MAX_ERRORS_SHOWN = 100  # a batch failing validation names at most this many lines


class BatchKind(enum.StrEnum):
    OPENAI = "openai"  # /v1/batches, from a JSONL file; results as output and error files
    ANTHROPIC = "anthropic"  # /v1/messages/batches, from a list of requests; results as JSONL on demand


PREFIXES = {BatchKind.OPENAI: PUBLIC_PREFIX, BatchKind.ANTHROPIC: MESSAGE_BATCH_PREFIX}


class BatchStatus(enum.StrEnum):
    VALIDATING = "validating"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self in (BatchStatus.FAILED, BatchStatus.COMPLETED, BatchStatus.EXPIRED, BatchStatus.CANCELLED)


class LineStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for a worker (or for its lease to run out)
    RUNNING = "running"  # claimed by a worker until ``claimed_until``
    SUCCEEDED = "succeeded"  # answered (status code 200)
    FAILED = "failed"  # the call failed: the error is its response (status code 4xx/5xx)
    CANCELLED = "cancelled"  # never ran: the batch was cancelled
    EXPIRED = "expired"  # never ran: the batch's completion window ended

    @property
    def open(self) -> bool:
        return self in (LineStatus.PENDING, LineStatus.RUNNING)


@dataclass(frozen=True, kw_only=True)
class BatchError:
    """Why a batch failed, or what ended it early; ``line`` is 1-based, as editors number lines."""

    code: str
    message: str
    param: str | None = None
    line: int | None = None


@dataclass(frozen=True, kw_only=True)
class LineCounts:
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.running + self.succeeded + self.failed + self.cancelled + self.expired

    @property
    def open(self) -> int:
        return self.pending + self.running

    @property
    def done(self) -> int:
        return self.total - self.open

    @classmethod
    def of(cls, counts: dict[LineStatus, int]) -> LineCounts:
        return cls(**{status.value: counts.get(status, 0) for status in LineStatus})


@dataclass(kw_only=True)
class Batch:
    id: uuid.UUID
    owner_id: uuid.UUID
    api_key_id: uuid.UUID | None
    kind: BatchKind
    endpoint: str
    completion_window: str
    status: BatchStatus
    created_at: datetime
    expires_at: datetime
    input_file_id: uuid.UUID | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    errors: tuple[BatchError, ...] = ()
    output_file_id: uuid.UUID | None = None
    error_file_id: uuid.UUID | None = None
    in_progress_at: datetime | None = None
    finalizing_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    expired_at: datetime | None = None
    cancelling_at: datetime | None = None
    cancelled_at: datetime | None = None
    counts: LineCounts = field(default_factory=LineCounts)  # read with the batch, never stored on it

    @property
    def public_id(self) -> str:
        return public_batch_id(self.id, self.kind)

    @property
    def ended_at(self) -> datetime | None:
        """When processing ended (``None`` until it has); an expired batch ends when it is finalized."""
        if not self.status.ended:
            return None
        return self.completed_at or self.cancelled_at or self.failed_at or self.finalizing_at or self.expired_at

    def require_ended(self, action: str) -> None:
        if not self.status.ended:
            raise BatchNotEnded(f"batch {self.public_id} is still {self.status}: {action} once it has ended")

    def start(self, at: datetime) -> None:
        self.status, self.in_progress_at = BatchStatus.IN_PROGRESS, at

    def fail(self, errors: tuple[BatchError, ...], at: datetime) -> None:
        self.status, self.failed_at, self.errors = BatchStatus.FAILED, at, errors

    def cancel(self, at: datetime) -> None:
        if self.status.ended or self.status in (BatchStatus.FINALIZING, BatchStatus.CANCELLING):
            raise BatchNotCancellable(f"batch {self.public_id} is {self.status}: it cannot be cancelled")
        self.status, self.cancelling_at = BatchStatus.CANCELLING, at

    def is_past_window(self, now: datetime) -> bool:
        return now >= self.expires_at

    def mark_expired(self, at: datetime) -> None:
        """The window ended: what has not run will not; the batch ends ``expired`` once finalized."""
        if self.expired_at is None:
            self.expired_at = at

    def finalize(self, at: datetime) -> None:
        """Every line is done: the results are being written (``finalizing_at`` says since when, the finalizer's
        lease)."""
        self.finalizing_at = at
        if self.status is BatchStatus.IN_PROGRESS:
            self.status = BatchStatus.FINALIZING

    def end(self, at: datetime) -> None:
        """After finalizing: cancelled, expired or completed, whichever ended it."""
        if self.cancelling_at is not None:
            self.status, self.cancelled_at = BatchStatus.CANCELLED, at
        elif self.expired_at is not None:
            self.status = BatchStatus.EXPIRED
        else:
            self.status, self.completed_at = BatchStatus.COMPLETED, at

    def add_error(self, error: BatchError) -> None:
        if all(e.code != error.code for e in self.errors):
            self.errors = (*self.errors, error)


@dataclass(frozen=True, kw_only=True)
class LineResult:
    """What a line produced: its API's response (status code and JSON body, as text) or, for a line that never ran,
    an error code and message."""

    status: LineStatus
    status_code: int | None = None
    body_json: str | None = None
    request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


CANCELLED_RESULT = LineResult(
    status=LineStatus.CANCELLED,
    error_code="batch_cancelled",
    error_message="the batch was cancelled before this request ran",
)
EXPIRED_RESULT = LineResult(
    status=LineStatus.EXPIRED,
    error_code="batch_expired",
    error_message="the batch's completion window ended before this request ran",
)


@dataclass(kw_only=True)
class BatchLine:
    id: uuid.UUID
    batch_id: uuid.UUID
    index: int  # 0-based position in the batch
    custom_id: str
    url: str
    body_json: str  # the request body, as the client sent it
    status: LineStatus = LineStatus.PENDING
    attempts: int = 0
    claim_id: uuid.UUID | None = None
    claimed_until: datetime | None = None
    status_code: int | None = None
    response_json: str | None = None
    request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    finished_at: datetime | None = None

    @property
    def public_id(self) -> str:
        return LINE_PREFIX + self.id.hex

    def apply(self, result: LineResult, at: datetime) -> None:
        self.status = result.status
        self.status_code = result.status_code
        self.response_json = result.body_json
        self.request_id = result.request_id
        self.error_code = result.error_code
        self.error_message = result.error_message
        self.finished_at = at
        self.claim_id = self.claimed_until = None


@dataclass(frozen=True)
class BatchPageCursor:
    """Where a page of batches starts: after this one, newest first."""

    created_at: datetime
    id: uuid.UUID


def public_batch_id(batch_id: uuid.UUID, kind: BatchKind = BatchKind.OPENAI) -> str:
    return PREFIXES[kind] + batch_id.hex


def parse_batch_id(text: str, prefix: str = PUBLIC_PREFIX) -> uuid.UUID:
    """The id inside a public batch id; anything else is a batch that does not exist (404, never 400)."""
    if text.startswith(prefix):
        try:
            return uuid.UUID(hex=text.removeprefix(prefix))
        except ValueError:
            pass
    raise BatchNotFound(f"no such batch: '{text[:100]}'")

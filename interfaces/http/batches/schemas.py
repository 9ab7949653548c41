from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from application.batches.list_batches import BatchPage
from domain.batches.model import Batch


class BatchProgressResponse(BaseModel):
    total: int = Field(description="Requests in the batch (0 while it is being validated).")
    done: int = Field(description="Requests that ended, whichever way.")
    pending: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    expired: int
    percent: float = Field(description="done / total, in percent (0 for an empty batch).")


class BatchSummaryResponse(BaseModel):
    id: str = Field(description="The batch's id in its own API (`batch_…` on /v1/batches).")
    kind: str = Field(description="`openai` (/v1/batches) or `anthropic` (/v1/messages/batches).")
    owner_id: uuid.UUID
    endpoint: str
    status: str
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    progress: BatchProgressResponse

    @classmethod
    def of(cls, batch: Batch) -> BatchSummaryResponse:
        counts = batch.counts
        ended = batch.completed_at or batch.failed_at or batch.cancelled_at
        if ended is None and batch.status.ended:
            ended = batch.expired_at
        return cls(
            id=batch.public_id,
            kind=batch.kind.value,
            owner_id=batch.owner_id,
            endpoint=batch.endpoint,
            status=batch.status.value,
            created_at=batch.created_at,
            expires_at=batch.expires_at,
            ended_at=ended,
            progress=BatchProgressResponse(
                total=counts.total,
                done=counts.done,
                pending=counts.pending,
                running=counts.running,
                succeeded=counts.succeeded,
                failed=counts.failed,
                cancelled=counts.cancelled,
                expired=counts.expired,
                percent=round(100 * counts.done / counts.total, 2) if counts.total else 0.0,
            ),
        )


class BatchPageResponse(BaseModel):
    items: list[BatchSummaryResponse]
    has_more: bool
    next_after: uuid.UUID | None = Field(description="Pass as `after` for the next page.")

    @classmethod
    def of(cls, page: BatchPage) -> BatchPageResponse:
        last = page.batches[-1].id if page.batches and page.has_more else None
        return cls(items=[BatchSummaryResponse.of(b) for b in page.batches], has_more=page.has_more, next_after=last)

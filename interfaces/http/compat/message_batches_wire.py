"""Message batches in Anthropic's response shapes (pure functions): the batch, a page of them, a deleted one.

As Anthropic's: times are RFC 3339 strings; ``processing_status`` is ``in_progress``, ``canceling`` or ``ended``;
``request_counts`` keep every request ``processing`` until the whole batch ends, then say how each ended; the
``results_url`` appears once it has ended. (Live progress is on the native ``GET /api/v1/batches``.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from application.batches.list_batches import BatchPage
from domain.batches.model import Batch


def _time(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def processing_status(batch: Batch) -> str:
    if batch.status.ended:
        return "ended"
    return "canceling" if batch.cancelling_at is not None else "in_progress"


def request_counts(batch: Batch) -> dict[str, int]:
    counts = batch.counts
    if not batch.status.ended:
        return {"processing": counts.total, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    return {
        "processing": counts.open,
        "succeeded": counts.succeeded,
        "errored": counts.failed,
        "canceled": counts.cancelled,
        "expired": counts.expired,
    }


def message_batch_body(batch: Batch, *, base_url: str) -> dict[str, Any]:
    """``base_url``: this API's own, for ``results_url`` (``https://host/v1``)."""
    ended = batch.status.ended
    return {
        "id": batch.public_id,
        "type": "message_batch",
        "processing_status": processing_status(batch),
        "request_counts": request_counts(batch),
        "ended_at": _time(batch.ended_at),
        "created_at": _time(batch.created_at),
        "expires_at": _time(batch.expires_at),
        "archived_at": None,
        "cancel_initiated_at": _time(batch.cancelling_at),
        "results_url": f"{base_url}/messages/batches/{batch.public_id}/results" if ended else None,
    }


def message_batch_page_body(page: BatchPage, *, base_url: str) -> dict[str, Any]:
    data = [message_batch_body(b, base_url=base_url) for b in page.batches]
    return {
        "data": data,
        "has_more": page.has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def deleted_body(batch: Batch) -> dict[str, Any]:
    return {"id": batch.public_id, "type": "message_batch_deleted"}

"""Batches in OpenAI's response shapes (pure functions): the batch object and a page of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from application.batches.list_batches import BatchPage
from domain.batches.model import Batch
from domain.files.model import public_file_id


def _seconds(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def request_counts(batch: Batch) -> dict[str, int]:
    counts = batch.counts
    return {
        "total": counts.total,
        "completed": counts.succeeded,
        "failed": counts.failed + counts.cancelled + counts.expired,
    }


def batch_body(batch: Batch) -> dict[str, Any]:
    errors = None
    if batch.errors:
        data = [{"code": e.code, "message": e.message, "param": e.param, "line": e.line} for e in batch.errors]
        errors = {"object": "list", "data": data}
    return {
        "id": batch.public_id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "errors": errors,
        "input_file_id": public_file_id(batch.input_file_id) if batch.input_file_id else None,
        "completion_window": batch.completion_window,
        "status": batch.status.value,
        "output_file_id": public_file_id(batch.output_file_id) if batch.output_file_id else None,
        "error_file_id": public_file_id(batch.error_file_id) if batch.error_file_id else None,
        "created_at": _seconds(batch.created_at),
        "in_progress_at": _seconds(batch.in_progress_at),
        "expires_at": _seconds(batch.expires_at),
        "finalizing_at": _seconds(batch.finalizing_at),
        "completed_at": _seconds(batch.completed_at),
        "failed_at": _seconds(batch.failed_at),
        "expired_at": _seconds(batch.expired_at),
        "cancelling_at": _seconds(batch.cancelling_at),
        "cancelled_at": _seconds(batch.cancelled_at),
        "request_counts": request_counts(batch),
        "metadata": batch.metadata or None,
    }


def batch_list_body(page: BatchPage) -> dict[str, Any]:
    data = [batch_body(b) for b in page.batches]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": page.has_more,
    }

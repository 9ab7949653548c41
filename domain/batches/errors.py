"""Errors of the batches context."""

from __future__ import annotations

from domain.shared.errors import Conflict, NotFound


class BatchNotFound(NotFound):
    code = "batch_not_found"
    title = "Batch not found"


class BatchNotCancellable(Conflict):
    """Cancelling a batch that already ended (OpenAI answers 409 as well)."""

    code = "batch_not_cancellable"
    title = "Batch cannot be cancelled"


class BatchNotEnded(Conflict):
    """Deleting a message batch, or reading its results, before it ended (Anthropic allows neither)."""

    code = "batch_not_ended"
    title = "Batch has not ended"

"""How batches run: limits and the workers' pace (set from ``SWITCHBOARD_BATCH_*``)."""

from __future__ import annotations

from dataclasses import dataclass

TASK_PREPARE = "batches.prepare"  # check the lines of a new batch and start it
TASK_RUN = "batches.run"  # claim and run lines of a batch until none is left, then finalize it


@dataclass(frozen=True, kw_only=True)
class BatchLimits:
    max_lines: int = 50_000  # requests per batch (OpenAI's limit)
    line_concurrency: int = 32  # lines a worker process runs at once (and claims at a time, per job)
    lease_seconds: float = 120.0  # a claimed line goes back to the others when its worker is silent this long
    jobs_per_batch: int = 4  # jobs enqueued per batch: how many workers (or job slots) can share one batch
    poll_seconds: float = 1.0  # how often a job with nothing to claim looks again (lines held by others)
    rate_limit_share: float = 0.5  # the part of what rate limits leave that a batch may take

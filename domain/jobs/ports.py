"""Ports of the job queue: enqueueing inside a unit of work, and a worker that runs what was enqueued."""

from __future__ import annotations

import abc
from collections.abc import Mapping

from domain.jobs.model import Job, JobHandler


class JobOutbox(abc.ABC):
    """Part of the unit of work: a job enqueued here is dispatched if and only if the transaction commits."""

    @abc.abstractmethod
    async def enqueue(self, job: Job) -> None: ...


class JobWorker(abc.ABC):
    @abc.abstractmethod
    async def run(self, handlers: Mapping[str, JobHandler]) -> None:
        """Runs jobs until cancelled. Cancelled, it takes no new job and lets the running ones finish (within
        its grace period) before returning. A job whose handler raises is logged and not retried by the queue:
        handlers keep their own state and retry policy in the database."""

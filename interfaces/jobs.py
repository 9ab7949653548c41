"""The job handlers: each task name the queue dispatches, and the use case that runs it (built by the container)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.vectors.attach import INGEST_TASK
from domain.jobs.model import JobHandler

if TYPE_CHECKING:
    from interfaces.container import Container


def job_handlers(container: Container) -> dict[str, JobHandler]:
    return {INGEST_TASK: container.ingest_file()}

"""The job handlers: which use case runs each task of the queue. One registry, used by ``switchboard worker`` and by
the in-process worker ``switchboard serve`` runs (``run_worker``); a new kind of job adds its handler here."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping

from application.batches.config import TASK_PREPARE, TASK_RUN
from application.responses.run_background_response import RUN_BACKGROUND_RESPONSE
from application.vectors.attach import INGEST_TASK
from domain.jobs.model import JobHandler
from infrastructure.observability.logging import get_logger
from interfaces.container import Container

RESUME_RETRY_SECONDS = 5.0


def job_handlers(container: Container) -> dict[str, JobHandler]:
    async def prepare_batch(args: Mapping[str, str]) -> None:
        await container.prepare_batch().execute(uuid.UUID(args["batch_id"]))

    async def run_batch(args: Mapping[str, str]) -> None:
        await container.run_batch().execute(uuid.UUID(args["batch_id"]))

    async def run_background_response(args: Mapping[str, str]) -> None:
        await container.run_background_response().execute(uuid.UUID(args["response_id"]))

    return {
        TASK_PREPARE: prepare_batch,
        TASK_RUN: run_batch,
        INGEST_TASK: container.ingest_file(),
        RUN_BACKGROUND_RESPONSE: run_background_response,
    }


async def run_worker(container: Container) -> None:
    """Runs jobs until cancelled, and picks up the work left unfinished (a job for each batch not ended and, on the
    in-process queue whose jobs die with their process, for each background response not finished and each vector
    store file still being ingested; retried while
    the database cannot answer, e.g. not migrated yet or down). Cancelled, it drains: running jobs finish the
    lines they hold and claim no more, within the grace period."""
    running = asyncio.create_task(container.job_worker().run(job_handlers(container)))
    resuming = asyncio.create_task(_resume(container))
    try:
        await asyncio.wait({running})
        running.result()  # a worker that stopped by itself says why
    except asyncio.CancelledError:
        container.run_batch().stop()
        resuming.cancel()
        running.cancel()
        for task in (resuming, running):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        raise


async def _resume(container: Container) -> None:
    log = get_logger("switchboard.jobs")
    while True:
        try:
            resumed = await container.resume_batches().execute()
            if not container.settings().database_url.startswith("postgresql"):  # PostgreSQL's queue keeps its jobs
                recovered = await container.recover_background_responses().execute()
                if recovered:
                    log.info("background responses queued again after a restart", count=recovered)
                ingesting = await container.resume_ingestion().execute()
                if ingesting:
                    log.info("file ingestion queued again after a restart", count=ingesting)
        except Exception as exc:  # the class says enough (a traceback here is costly and says nothing more)
            log.warning("could not look for unfinished work; trying again", error=type(exc).__name__)
            await asyncio.sleep(RESUME_RETRY_SECONDS)
            continue
        if resumed:
            log.info("batches resumed", batches=resumed)
        return

"""The job queue behaves the same on every adapter: the in-process one (memory, SQLite) and procrastinate on
PostgreSQL. A job exists once its unit of work commits, never before and never for a rolled-back one; a cancelled
worker lets its running job finish; on PostgreSQL a job held by a worker that died goes back to the queue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.unit_of_work import UnitOfWorkFactory
from domain.jobs.model import Job, JobHandler
from domain.jobs.ports import JobWorker
from infrastructure.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from infrastructure.jobs.in_process import InProcessJobQueue, InProcessJobWorker
from infrastructure.jobs.procrastinate_queue import ProcrastinateJobWorker
from infrastructure.memory.unit_of_work import InMemoryUnitOfWorkFactory

pytestmark = pytest.mark.contract


@dataclass
class Queue:
    uow: UnitOfWorkFactory
    worker: Callable[[], JobWorker]
    backend: str


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def queue(request: pytest.FixtureRequest) -> Queue:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        factory = request.getfixturevalue("postgres_session_factory")
        return Queue(
            SqlAlchemyUnitOfWorkFactory(factory),
            lambda: ProcrastinateJobWorker(url, concurrency=4, grace_seconds=5, lease_seconds=2, poll_seconds=0.2),
            "postgres",
        )
    jobs = InProcessJobQueue()
    if request.param == "memory":
        uow: UnitOfWorkFactory = InMemoryUnitOfWorkFactory(job_queue=jobs)
    else:
        uow = SqlAlchemyUnitOfWorkFactory(request.getfixturevalue("sqlite_session_factory"), job_queue=jobs)
    return Queue(uow, lambda: InProcessJobWorker(jobs, concurrency=4, grace_seconds=5), request.param)


@pytest.fixture
async def clean_queue(request: pytest.FixtureRequest, queue: Queue) -> Queue:
    if queue.backend == "postgres":
        engine: AsyncEngine = request.getfixturevalue("postgres_engine")
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM procrastinate_jobs"))
    return queue


@contextlib.asynccontextmanager
async def running(worker: JobWorker, handlers: Mapping[str, JobHandler]) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(worker.run(handlers))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def enqueue(uow_factory: UnitOfWorkFactory, *jobs: Job, commit: bool = True) -> None:
    async with uow_factory() as uow:
        for job in jobs:
            await uow.jobs.enqueue(job)
        if commit:
            await uow.commit()


async def eventually(condition: Callable[[], bool], seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.02)


class TestJobQueue:
    async def test_committed_jobs_run_with_their_args_and_rolled_back_ones_never(self, clean_queue: Queue) -> None:
        seen: list[dict[str, str]] = []

        async def handler(args: Mapping[str, str]) -> None:
            seen.append(dict(args))

        await enqueue(clean_queue.uow, Job("record", {"n": "dropped"}), commit=False)
        await enqueue(clean_queue.uow, Job("record", {"n": "1"}), Job("record", {"n": "2", "x": "y"}))
        async with running(clean_queue.worker(), {"record": handler}):
            await eventually(lambda: len(seen) == 2)
            await asyncio.sleep(0.3)
        assert sorted(seen, key=lambda a: a["n"]) == [{"n": "1"}, {"n": "2", "x": "y"}]

    async def test_a_failing_job_does_not_stop_the_worker(self, clean_queue: Queue) -> None:
        seen: list[str] = []

        async def handler(args: Mapping[str, str]) -> None:
            if args["n"] == "bad":
                raise RuntimeError("boom")
            seen.append(args["n"])

        await enqueue(clean_queue.uow, Job("maybe", {"n": "bad"}), Job("maybe", {"n": "good"}))
        async with running(clean_queue.worker(), {"maybe": handler}):
            await eventually(lambda: seen == ["good"])

    async def test_a_cancelled_worker_lets_its_running_job_finish(self, clean_queue: Queue) -> None:
        started, finished = asyncio.Event(), asyncio.Event()

        async def slow(args: Mapping[str, str]) -> None:
            started.set()
            await asyncio.sleep(0.5)
            finished.set()

        await enqueue(clean_queue.uow, Job("slow"))
        async with running(clean_queue.worker(), {"slow": slow}):
            await asyncio.wait_for(started.wait(), 10)
        assert finished.is_set()


async def test_a_job_held_by_a_dead_worker_runs_again_after_the_lease(
    postgres_url: str, postgres_session_factory: object, postgres_engine: AsyncEngine
) -> None:
    """A SIGKILLed worker's job: ``doing``, held by a worker whose heartbeat stopped an hour ago."""
    async with postgres_engine.begin() as connection:
        await connection.execute(text("DELETE FROM procrastinate_jobs"))
    await enqueue(SqlAlchemyUnitOfWorkFactory(postgres_session_factory), Job("leased", {"n": "1"}))  # type: ignore[arg-type]
    async with postgres_engine.begin() as connection:
        dead = (
            await connection.execute(
                text(
                    "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') RETURNING id"
                )
            )
        ).scalar_one()
        await connection.execute(
            text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :worker WHERE task_name = 'leased'"),
            {"worker": dead},
        )
    seen: list[str] = []

    async def handler(args: Mapping[str, str]) -> None:
        seen.append(args["n"])

    worker = ProcrastinateJobWorker(postgres_url, concurrency=1, grace_seconds=5, lease_seconds=1, poll_seconds=0.2)
    async with running(worker, {"leased": handler}):
        await eventually(lambda: seen == ["1"])


@pytest.mark.parametrize("twice", [False, True], ids=["once", "twice"])
@pytest.mark.parametrize("after", [0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1])
async def test_a_worker_cancelled_at_any_point_of_its_start_closes_its_pool(
    postgres_url: str, after: float, twice: bool
) -> None:
    """A SIGTERM can reach a worker process while its procrastinate pool is still opening, and a second one while it
    drains. The pool must be closed all the same: a psycopg pool left open keeps worker tasks that swallow the
    cancellation ``asyncio.run`` sends them at exit, and the process never exits (a restarted worker stopped soon
    after did exactly that)."""
    worker = ProcrastinateJobWorker(postgres_url, concurrency=1, grace_seconds=5, lease_seconds=2, poll_seconds=0.2)
    before = {task for task in asyncio.all_tasks() if task.get_name().startswith("pool-")}
    task = asyncio.create_task(worker.run({}))
    await asyncio.sleep(after)
    task.cancel()
    if twice:
        await asyncio.sleep(0.001)
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    left = {t for t in asyncio.all_tasks() if t.get_name().startswith("pool-") and not t.done()} - before
    assert not left, f"the pool's tasks outlive the worker: {sorted(t.get_name() for t in left)}"


async def test_a_drain_whose_shutdown_fails_still_ends_the_worker(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """procrastinate's drain talks to the database (it unregisters the worker): with the database away it raises a
    database error in place of the cancellation. The worker must still stop, not take it for a worker that failed
    by itself and start a new one (a drained process kept running for minutes that way)."""
    started = asyncio.Event()
    failed: list[str] = []

    async def shutdown_fails(self: object, **_: object) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if failed:  # once: a worker started again ends at the next cancellation, so the test can end too
                raise
            failed.append("database error")
            raise RuntimeError("Database error.") from None

    monkeypatch.setattr("procrastinate.App.run_worker_async", shutdown_fails)
    worker = ProcrastinateJobWorker(postgres_url, concurrency=1, grace_seconds=5, lease_seconds=2, poll_seconds=0.2)
    task = asyncio.create_task(worker.run({}))
    try:
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert task in done, "the worker started again after its drain failed"
        assert task.cancelled()
        assert failed == ["database error"]
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=10)

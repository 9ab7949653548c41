"""A drained worker process ends the tasks a library left behind before it exits: ``asyncio.run`` cancels each
once and then waits for it without limit, so a task that swallows one cancellation (an open psycopg pool's worker
does, while it connects) kept a worker process alive after SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import time

from interfaces.cli import end_leftover_tasks


async def test_a_task_that_swallowed_one_cancellation_ends_at_the_next() -> None:
    forever = asyncio.Event()

    async def like_a_pool_worker() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # "make sure don't die in the attempt"
            await asyncio.sleep(3600)  # connecting
        await forever.wait()  # back to its queue

    task = asyncio.create_task(like_a_pool_worker(), name="pool-1-worker-0")
    await asyncio.sleep(0)
    task.cancel()  # what asyncio.run does, once
    await asyncio.sleep(0.05)
    assert not task.done()  # it swallowed it: asyncio.run would now wait forever

    assert await end_leftover_tasks(5) == []
    assert task.cancelled()


async def test_a_task_that_ignores_every_cancellation_is_named_after_the_timeout() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    started = time.monotonic()
    assert await end_leftover_tasks(0.3) == ["stubborn"]
    assert time.monotonic() - started < 2
    release.set()
    task.cancel()
    await asyncio.wait({task}, timeout=1)
    assert task.done()


async def test_nothing_left_returns_at_once() -> None:
    started = time.monotonic()
    assert await end_leftover_tasks(5) == []
    assert time.monotonic() - started < 0.5

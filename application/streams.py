"""What a front door consumes of a model call's stream, whatever the stream carries (model events, a conversation's
deltas and outcome): it is iterated, then closed however the iteration ended, with the cause when it was cut."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any, Protocol, TypeVar

T_co = TypeVar("T_co", covariant=True)
# Work that must finish though the request that started it is cancelled; strong references live here.
_RUNNING: set[asyncio.Task[Any]] = set()


class Streamed(Protocol[T_co]):
    """A stream of a model call's items, as the front doors run them: iterated, then closed however it ended
    (``cause``: why it was cut, when it was)."""

    @property
    def cache_status(self) -> str: ...

    def __aiter__(self) -> AsyncIterator[T_co]: ...

    async def aclose(self, cause: BaseException | None = None) -> None: ...


async def run_to_end(work: Coroutine[Any, Any, None]) -> None:
    """Runs ``work`` in a task of its own and waits for it. A cancelled caller stops waiting; the work goes on to its
    end (closing a stream, settling its call, storing its partial answer, releasing its key must not be cut in
    half: the server's request task may be cancelled again at every await while it unwinds)."""
    task = asyncio.ensure_future(work)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    await asyncio.shield(task)

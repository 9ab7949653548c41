"""A :class:`FakeUpstream` run on its own event loop in a daemon thread, for synchronous tests and clients."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from tests.fakes.upstream.behaviours import Behaviour
from tests.fakes.upstream.transport import loop_factory

if TYPE_CHECKING:
    from tests.fakes.upstream.server import FakeUpstream, RecordedRequest


class UpstreamThread:
    """A :class:`FakeUpstream` served from its own event loop in a daemon thread.

    Scripting calls (``push``, ``fail_model``, ``reset``) and reads are safe from the test thread.
    """

    def __init__(self, upstream: FakeUpstream) -> None:
        self.upstream = upstream
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return self.upstream.base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.upstream.requests

    @property
    def completions_served(self) -> int:
        return self.upstream.completions_served

    @property
    def embeddings_served(self) -> int:
        return self.upstream.embeddings_served

    @property
    def in_flight(self) -> int:
        return self.upstream.in_flight

    @property
    def pending(self) -> list[Behaviour]:
        return self.upstream.pending

    @property
    def served(self) -> dict[str, int]:
        """Successful answers per upstream path (a copy)."""
        return dict(self.upstream.served)

    def push(self, *behaviours: Behaviour) -> None:
        self.upstream.push(*behaviours)

    def fail_model(self, model: str, status: int = 500, **error_kwargs: Any) -> None:
        self.upstream.fail_model(model, status, **error_kwargs)

    def reset(self) -> None:
        self.upstream.reset()

    def start(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("fake upstream did not start")
        if self._error is not None:
            raise RuntimeError("fake upstream failed to start") from self._error

    def _run(self) -> None:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(self._main())

    async def _main(self) -> None:
        try:
            await self.upstream.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._loop = asyncio.get_running_loop()
        self._ready.set()
        await self.upstream.wait_closed()
        await self.upstream.stop()

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.upstream.request_stop)
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError("fake upstream thread did not stop")
        self._thread = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

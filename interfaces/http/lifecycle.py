"""Knowing that a graceful shutdown has begun, so that open streams can end cleanly before the hard cut.

On SIGTERM uvicorn stops accepting, lets in-flight requests finish for ``--timeout-graceful-shutdown`` seconds, then
cancels what is left, mid-stream. A stream still running near that deadline is better ended by us: a final ``error``
event (``code: shutting_down``) the client can act on, its partial answer stored. The server's own signal handler
is chained, not replaced, and only when a server installed one (never in tests or under other runners).

A stream is cut after the event it has just sent, or, if the upstream is silent at the deadline, while it waits for
the next one: ``Shutdown`` cancels the waits it knows of (``cut_on_shutdown`` registers them), and
``cut_on_shutdown`` turns that cancellation into ``ShuttingDown`` for the writer's final event.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from types import FrameType
from typing import Any, TypeVar

from application.streams import Streamed
from domain.shared.errors import ShuttingDown

T = TypeVar("T")
SHUTTING_DOWN = "the server is restarting; send the request again"

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Shutdown:
    def __init__(self, grace_seconds: float) -> None:
        # Streams are cut a little before the server's own deadline, leaving time to store and send the end.
        self._cut_after = max(grace_seconds - 2.0, grace_seconds * 0.5)
        self._cut_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: set[asyncio.Task[object]] = set()  # streams waiting for their next event
        self._cut: set[asyncio.Task[object]] = set()  # ... of which cancelled by the cut

    @property
    def draining(self) -> bool:
        return self._cut_at is not None

    def begin(self) -> None:
        """Starts the countdown (from a signal handler too: the loop is only told through its thread-safe door)."""
        if self._cut_at is None:
            self._cut_at = time.monotonic() + self._cut_after
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._arm)

    def _arm(self) -> None:
        assert self._loop is not None
        assert self._cut_at is not None
        self._loop.call_later(max(0.0, self._cut_at - time.monotonic()), self._cut_the_waiting)

    def _cut_the_waiting(self) -> None:
        for task in list(self._waiting):
            self._cut.add(task)
            task.cancel()

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Around a stream's wait for its next event: past the deadline the wait is cancelled (see ``cut``)."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        if self._loop is None:
            self._loop = task.get_loop()
        self._waiting.add(task)
        try:
            yield
        finally:
            self._waiting.discard(task)

    def was_cut(self, task: asyncio.Task[object] | None) -> bool:
        """Whether ``task``'s cancellation was the cut (then it is taken back: the stream ends with its event)."""
        if task is None or task not in self._cut:
            return False
        self._cut.discard(task)
        task.uncancel()
        return True

    def should_cut(self) -> bool:
        """True once a stream has run out of shutdown grace: it should end now, with a final event."""
        return self._cut_at is not None and time.monotonic() >= self._cut_at

    @contextlib.contextmanager
    def listening(self) -> Iterator[None]:
        """While inside: a shutdown signal also starts the countdown, then goes on to the server's handler."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        previous: dict[signal.Signals, Any] = {}
        for sig in SHUTDOWN_SIGNALS:
            handler = signal.getsignal(sig)
            if callable(handler):  # a server's handler: chain it. Default or ignored: leave them alone.
                previous[sig] = handler
                signal.signal(sig, self._chained(handler))
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _chained(self, handler: Any) -> Any:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.begin()
            handler(signum, frame)

        return on_signal


async def cut_on_shutdown(stream: Streamed[T], shutdown: Shutdown) -> AsyncGenerator[T, None]:
    """``stream``'s items, until the shutdown grace runs out: then ``ShuttingDown`` is raised, after the item just
    sent or in place of one the upstream is slow to send, for the stream's writer to end with its own error event.
    Closing this closes ``stream``, telling it why when it was cut (its call is then settled as cut by shutdown)."""
    cause: ShuttingDown | None = None
    iterator = aiter(stream)
    try:
        while True:
            try:
                with shutdown.waiting():
                    item = await anext(iterator)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if not shutdown.was_cut(asyncio.current_task()):
                    raise
                cause = ShuttingDown(SHUTTING_DOWN)
                raise cause from None
            yield item
            if shutdown.should_cut():
                cause = ShuttingDown(SHUTTING_DOWN)
                raise cause
    finally:
        await stream.aclose(cause)

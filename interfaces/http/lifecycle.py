"""Knowing that a graceful shutdown has begun, so that open streams can end cleanly before the hard cut.

On SIGTERM uvicorn stops accepting, lets in-flight requests finish for ``--timeout-graceful-shutdown`` seconds, then
cancels what is left, mid-stream. A stream still running near that deadline is better ended by us: a final ``error``
event (``code: shutting_down``) the client can act on, its partial answer stored. The server's own signal handler
is chained, not replaced, and only when a server installed one (never in tests or under other runners).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from types import FrameType
from typing import Any, TypeVar

from domain.shared.errors import ShuttingDown

T = TypeVar("T")
SHUTTING_DOWN = "the server is restarting; send the request again"

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Shutdown:
    def __init__(self, grace_seconds: float) -> None:
        # Streams are cut a little before the server's own deadline, leaving time to store and send the end.
        self._cut_after = max(grace_seconds - 2.0, grace_seconds * 0.5)
        self._cut_at: float | None = None

    @property
    def draining(self) -> bool:
        return self._cut_at is not None

    def begin(self) -> None:
        if self._cut_at is None:
            self._cut_at = time.monotonic() + self._cut_after

    def should_cut(self) -> bool:
        """True once a stream has run out of shutdown grace: it should end now, with a final event."""
        return self._cut_at is not None and time.monotonic() >= self._cut_at

    @contextlib.contextmanager
    def listening(self) -> Iterator[None]:
        """While inside: a shutdown signal also starts the countdown, then goes on to the server's handler."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous: dict[int, Any] = {}
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


async def cut_on_shutdown(events: AsyncIterator[T], shutdown: Shutdown) -> AsyncIterator[T]:
    """``events``, until the shutdown grace runs out: then ``ShuttingDown`` is raised after the event just sent, for
    the stream's writer to end with its own error event. Closing this closes ``events``."""
    try:
        async for event in events:
            yield event
            if shutdown.should_cut():
                raise ShuttingDown(SHUTTING_DOWN)
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()

"""A model call's total deadline, shared by its retries and fallbacks.

Each upstream attempt is bounded by its deployment's ``timeout_seconds``, but a call retries timeouts and falls
back, so without a deadline a client would wait ``max_attempts`` timeouts per model. The router runs a whole
``complete``, and a ``stream`` until its first event, within the asked model's ``deadline_seconds``; at expiry the
attempt in flight is cancelled and the caller gets ``UpstreamTimeout``. The retry loop, which knows the deadline
from its ``Tally``, does not start a backoff that would end past it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from domain.shared.errors import UpstreamTimeout


@asynccontextmanager
async def within_deadline(seconds: float | None, *, model: str) -> AsyncIterator[None]:
    """Runs the block within ``seconds`` (``None``: no limit); at expiry it is cancelled and ``UpstreamTimeout``
    raised instead."""
    if seconds is None:
        yield
        return
    timeout = asyncio.timeout(seconds)
    try:
        async with timeout:
            yield
    except TimeoutError:
        if not timeout.expired():
            raise  # a TimeoutError of the block's own, not the deadline
        raise UpstreamTimeout(f"'{model}' did not answer within its deadline of {seconds:g} s", model=model) from None

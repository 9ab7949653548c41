"""A request's own admission (its requests-per-minute count), made together with its model call's.

A front door that answers with a model call may leave the request's count to that call instead of making it first
(``defer``): the model call's admission then makes it at once with the budgets' hold and the token admission, so with
Redis the three leave in one round trip instead of two. It is made once, by whichever asks first; a front door that
defers it makes it itself when its request ends without having been admitted by a model call (a body refused, an
idempotent replay, a background response), so every request is counted either way.

The count travels in a context variable, as the request's id does for the logs: the model call is several layers
and use cases away from the front door, and only the pipeline's admission and the cache's answers look for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar


class RequestAdmission:
    """The request's count against its requests-per-minute policies, made once (``make``); a refusal raises there
    (``LimitExceeded``) for whoever made it."""

    def __init__(self, admit: Callable[[], Awaitable[object]]) -> None:
        self._admit = admit
        self._made = False

    @property
    def made(self) -> bool:
        return self._made

    async def make(self) -> None:
        if self._made:
            return
        self._made = True  # before the await: whoever asks while it is under way does not count the request again
        await self._admit()


_PENDING: ContextVar[RequestAdmission | None] = ContextVar("switchboard_request_admission", default=None)


def defer(admission: RequestAdmission) -> None:
    """Leaves ``admission`` to the request's first model call (this task's context and the tasks it starts)."""
    _PENDING.set(admission)


def pending() -> RequestAdmission | None:
    """The request's admission when its front door left it to the model call and nobody has made it yet."""
    admission = _PENDING.get()
    return admission if admission is not None and not admission.made else None


async def make_pending() -> None:
    """Makes the request's pending admission, if any (a model call answered without the meter's admission)."""
    admission = pending()
    if admission is not None:
        await admission.make()

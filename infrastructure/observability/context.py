"""What every log line of a request carries, set once by the HTTP middleware and filled in as the request learns.

One ``ContextVar`` holding one small mutable object: the middleware sets it once per request, the authentication
dependency adds the user, and the log processor reads it. Tasks spawned by the request copy the variable and so
share the object.
"""

from __future__ import annotations

from contextvars import ContextVar


class RequestContext:
    __slots__ = ("api_key_id", "client", "method", "path", "request_id", "user_id")

    def __init__(self, request_id: str, method: str, path: str, client: str | None) -> None:
        self.request_id = request_id
        self.method = method
        self.path = path
        self.client = client
        self.user_id: str | None = None
        self.api_key_id: str | None = None


current_request: ContextVar[RequestContext | None] = ContextVar("switchboard_request", default=None)


def note_principal(user_id: object, api_key_id: object | None) -> None:
    """Records who is calling, for the rest of the request's log lines and its access log."""
    context = current_request.get()
    if context is not None:
        context.user_id = str(user_id)
        context.api_key_id = str(api_key_id) if api_key_id is not None else None

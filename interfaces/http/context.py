"""Per-request context shared by middleware, error handlers and logs."""

from __future__ import annotations

from contextvars import ContextVar

from starlette.requests import Request

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


def client_address(request: Request) -> str | None:
    """The client's address as ``RequestMiddleware`` resolved it: the peer's, or, when the peer is a trusted proxy
    (``SWITCHBOARD_TRUSTED_PROXIES``), the rightmost untrusted ``X-Forwarded-For`` hop. The middleware writes it into
    the ASGI scope's ``client`` before any route runs, so this is what every layer below it sees."""
    return request.client.host if request.client else None

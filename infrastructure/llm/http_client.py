"""The pooled HTTP client each upstream deployment keeps for its life, and the SDK-free view of its failures."""

from __future__ import annotations

import httpx2

from domain.llm.model import ModelSpec
from domain.shared.errors import UpstreamBadResponse, UpstreamError, UpstreamTimeout, UpstreamUnavailable

MAX_CONNECTIONS = 100
MAX_KEEPALIVE_CONNECTIONS = 20
KEEPALIVE_EXPIRY_SECONDS = 30.0


def pooled_http_client(spec: ModelSpec) -> httpx2.AsyncClient:
    """Keep-alive connections to one deployment. Redirects are not followed: an LLM API that redirects is
    misconfigured (a wrong ``base_url``), and following one would replay the credentials elsewhere.

    ``timeout_seconds`` bounds every read, write and wait for a pooled connection (so the silence between two stream
    events); ``connect_timeout_seconds`` the TCP and TLS handshake. The adapters also bound a whole
    non-streaming call by ``timeout_seconds``.
    """
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(spec.timeout_seconds, connect=spec.connect_timeout_seconds),
        limits=httpx2.Limits(
            max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS,
            keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
        ),
        follow_redirects=False,
    )


def _what_failed(exc: BaseException) -> str:
    """Plain words for a network failure: exception class names are internals and never reach a client."""
    if isinstance(exc, httpx2.ConnectError):
        return "connection failed"
    if isinstance(exc, httpx2.RemoteProtocolError):
        return "the connection broke the HTTP protocol or closed early"
    if isinstance(exc, httpx2.ReadError | httpx2.WriteError):
        return "the connection was lost"
    return "network error"


def transport_error(exc: BaseException, *, started: bool, provider: str, model: str) -> UpstreamError | None:
    """The domain error for a network-level failure (``None`` if ``exc`` is not one).

    Before the response started, a broken connection means the upstream is unavailable; once it has started, the
    answer was cut short, which is a bad response.
    """
    where = {"provider": provider, "model": model}
    if isinstance(exc, httpx2.TimeoutException | TimeoutError):
        return UpstreamTimeout(f"{provider} did not answer in time", **where)
    if isinstance(exc, httpx2.HTTPError):
        if started:
            return UpstreamBadResponse(f"{provider} cut the response short ({_what_failed(exc)})", **where)
        return UpstreamUnavailable(f"{provider} could not be reached ({_what_failed(exc)})", **where)
    return None

"""The pooled ``httpx2`` client of an SDK adapter (``client = "sdk"``), and the SDK-free view of its failures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2

from domain.shared.errors import UpstreamBadResponse, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from infrastructure.llm.transport import Transport
from infrastructure.llm.upstream_errors import Where, is_html
from infrastructure.llm.wire import DEFAULT_MAX_RESPONSE_BYTES, KEEPALIVE_EXPIRY_SECONDS, MAX_CONNECTIONS


class ResponseTooLarge(httpx2.ReadError):
    """The upstream sent more than the deployment's byte limit; reading stopped there."""


class _CappedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._inner:
            received += len(chunk)
            if received > self._limit:
                raise ResponseTooLarge(f"the response exceeded {self._limit} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class CappedTransport(httpx2.AsyncBaseTransport):
    """Stops reading a response body past ``max_bytes`` (a declared Content-Length past it is refused at once), so
    a misbehaving upstream cannot exhaust memory or fill the database with one answer."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, *, max_bytes: int) -> None:
        self._inner = inner
        self._max_bytes = max_bytes

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            await response.aclose()
            raise ResponseTooLarge(f"the response declared {declared} bytes, above {self._max_bytes}", request=request)
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CappedStream(response.stream, self._max_bytes),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def pooled_http_client(
    transport: Transport, *, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
) -> httpx2.AsyncClient:
    """Keep-alive connections to one deployment. Redirects are not followed: an LLM API that redirects is
    misconfigured (a wrong ``base_url``), and following one would replay the credentials elsewhere.

    ``timeout_seconds`` bounds every read, write and wait for a pooled connection (so the silence between two stream
    events); ``connect_timeout_seconds`` the TCP and TLS handshake. The adapters also bound a whole
    non-streaming call by ``timeout_seconds``. A response body (a whole stream included) is cut at
    ``max_response_bytes``.
    """
    limits = httpx2.Limits(
        max_connections=MAX_CONNECTIONS,
        max_keepalive_connections=MAX_CONNECTIONS,  # every idle connection kept: no handshake per call
        keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
    )
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(transport.timeout_seconds, connect=transport.connect_timeout_seconds),
        transport=CappedTransport(httpx2.AsyncHTTPTransport(limits=limits), max_bytes=max_response_bytes),
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
    where = Where(provider=provider, model=model)
    if isinstance(exc, ResponseTooLarge):
        return UpstreamBadResponse(f"{provider} sent a response larger than the gateway accepts", **where)
    if isinstance(exc, httpx2.TimeoutException | TimeoutError):
        return UpstreamTimeout(f"{provider} did not answer in time", **where)
    if isinstance(exc, httpx2.HTTPError):
        if started:
            return UpstreamBadResponse(f"{provider} cut the response short ({_what_failed(exc)})", **where)
        return UpstreamUnavailable(f"{provider} could not be reached ({_what_failed(exc)})", **where)
    return None


def is_html_response(response: httpx2.Response, body: object) -> bool:
    """Whether a failed response an SDK read was a web page (the SDK's ``body`` is then the text)."""
    return is_html(body if isinstance(body, str) else "", response.headers.get("content-type"))

"""The direct upstream client: one pooled ``aiohttp`` session per deployment, JSON by ``orjson``, SSE split by hand.

The provider SDKs build a Pydantic model of every request and response and run on ``httpx``: about 2.8 ms of CPU
per call here, against 0.3 ms for the same exchange on ``aiohttp`` (bench/PROFILE.md). The direct adapters speak
the same wire formats through this module; the SDK adapters stay, selectable per deployment (``client = "sdk"``),
and both pass one contract suite against the fake upstream.

What the SDK adapters get from their SDK, this client does itself, with the same outcome for the caller:

- every failure is a domain ``UpstreamError`` naming the provider and the model, never an ``aiohttp`` type;
- redirects are not followed (an LLM API that redirects has a wrong ``base_url``; following would replay the
  credentials elsewhere), and neither a redirect nor an HTML error page is retried: both would come again;
- ``timeout_seconds`` bounds a whole non-streaming call and the silence between two stream reads,
  ``connect_timeout_seconds`` the connection;
- a response body, a whole stream included, is cut at ``max_response_bytes``;
- the deployment's key is blanked out of any upstream message that echoes it.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson
from yarl import URL

from domain.shared.errors import UpstreamBadResponse, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from infrastructure.llm.upstream_errors import Where, error_for_status, is_html, redact

# Per deployment; every idle one is kept alive. Below the gateway's own concurrency, requests queue for a connection:
# with 100, throughput fell by a third from 64 to 256 concurrent requests (make bench); the clients bound the rest.
MAX_CONNECTIONS = 1000
KEEPALIVE_EXPIRY_SECONDS = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One server-sent event: its ``event:`` name (``None`` when it has none) and its ``data:`` lines joined."""

    event: str | None
    data: bytes


class SSEDecoder:
    """Splits a byte stream into server-sent events (the WHATWG rules the providers use: ``event:``, ``data:``,
    comments, ``\\n`` or ``\\r\\n`` line ends, an empty line ending an event)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by ``chunk``, in order (several when one read carried several)."""
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        events: list[SSEEvent] = []
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                if self._data or self._event is not None:
                    events.append(SSEEvent(self._event, b"\n".join(self._data)))
                self._event, self._data = None, []
                continue
            field, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if field == b"data":
                self._data.append(value)
            elif field == b"event":
                self._event = value.decode("utf-8", "replace")
            # comments (an empty field), ``id:`` and ``retry:`` mean nothing to a model's answer
        return events


class StreamDecoder(Protocol):
    """Splits a streamed body into events: ``SSEDecoder``, or another framing read as the same events."""

    def feed(self, chunk: bytes) -> list[SSEEvent]: ...


# Signs one request: (the URL, the body) -> the headers that carry the signature (AWS SigV4 for Bedrock).
Signer = Callable[[str, bytes], Mapping[str, str]]


class UpstreamHTTP:
    """Keep-alive connections to one deployment, opened on first use (a session belongs to the running loop)."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        provider: str,
        model: str,
        timeout_seconds: float,
        connect_timeout_seconds: float,
        secret: str | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        signer: Signer | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._signer = signer
        self._headers = {"content-type": _JSON, "accept": _JSON, **headers}
        self._where = Where(provider=provider, model=model)
        self._timeout = timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._secret = secret
        self._max_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}  # parsed once per path, not per call
        self._pool: UpstreamHTTP | None = None  # the connections this view borrows (``authorized``)
        self._auth: dict[str, str] = {}  # sent with every request, over the session's own headers

    def authorized(self, headers: Mapping[str, str], secret: str) -> UpstreamHTTP:
        """The same upstream on the same connections, every request carrying ``headers`` (another key's, named as
        the session's own) instead of the session's; ``secret`` is redacted from upstream errors as the own is."""
        view = copy.copy(self)
        view._pool = self._pool or self
        view._auth = dict(headers)
        view._secret = secret
        return view

    def _open(self) -> aiohttp.ClientSession:
        if self._pool is not None:
            return self._pool._open()
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_EXPIRY_SECONDS, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout, sock_read=self._timeout),
                headers=self._headers,
                skip_auto_headers=("User-Agent",),
                auto_decompress=True,
                cookie_jar=aiohttp.DummyCookieJar(),  # an API sets no cookies worth keeping: skip the jar's work
            )
        return self._session

    def _url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            # A signed request is sent exactly as signed: its path stays as encoded (yarl would decode %3A).
            url = self._urls[path] = URL(self._base + path, encoded=self._signer is not None)
        return url

    def _signed(self, url: URL, payload: bytes) -> dict[str, str]:
        signed = dict(self._signer(str(url), payload)) if self._signer is not None else {}
        return {**self._auth, **signed} if self._auth else signed

    async def aclose(self) -> None:
        if self._pool is not None:  # a view: the connections are its pool's to close
            return
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        """The decoded JSON answer to a POST; an ``UpstreamError`` for any failure, raised ``from None``."""
        payload = orjson.dumps(body)
        url = self._url(path)
        try:
            async with asyncio.timeout(self._timeout):
                post = self._open().post(url, data=payload, headers=self._signed(url, payload), allow_redirects=False)
                async with post as response:
                    if response.status >= 300:
                        raise await self._status_error(response)
                    raw = await self._read_capped(response)
        except UpstreamError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # Nothing of a whole answer reached anyone, so a body cut short is a lost connection (worth a retry).
            raise self._transport_error(exc, started=False) from None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise self._bad("sent an unreadable response") from None

    async def get_json(self, path: str) -> Any:
        """The decoded JSON answer to a GET (a model list: what a key check asks); failures as ``post_json``'s."""
        url = self._url(path)
        try:
            async with asyncio.timeout(self._timeout):
                async with self._open().get(url, headers=self._signed(url, b""), allow_redirects=False) as response:
                    if response.status >= 300:
                        raise await self._status_error(response)
                    raw = await self._read_capped(response)
        except UpstreamError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise self._transport_error(exc, started=False) from None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise self._bad("sent an unreadable response") from None

    async def stream(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        decoder: StreamDecoder | None = None,
        accept: str = "text/event-stream",
    ) -> AsyncGenerator[list[SSEEvent], None]:
        """The events of a streamed POST (server-sent events unless another ``decoder`` reads the framing), in the
        batches the network delivered them. Leaving early (``aclose``) closes the response, so the upstream sees
        the client go."""
        payload = orjson.dumps(body)
        url = self._url(path)
        headers = {"accept": accept, **self._signed(url, payload)}
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._open().post(url, data=payload, headers=headers, allow_redirects=False)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise self._transport_error(exc, started=False) from None
        try:
            if response.status >= 300:
                raise await self._status_error(response)
            decoder = decoder or SSEDecoder()
            received = 0
            async for chunk in response.content.iter_any():  # each read bounded by the session's sock_read
                received += len(chunk)
                if received > self._max_bytes:
                    raise self._bad("sent a response larger than the gateway accepts")
                events = decoder.feed(chunk)
                if events:
                    yield events
        except UpstreamError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise self._transport_error(exc, started=True) from None
        finally:
            response.close()  # a stream left early must not go back to the pool half read

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        declared = response.content_length
        if declared is not None and declared > self._max_bytes:
            raise self._bad("sent a response larger than the gateway accepts")
        parts: list[bytes] = []
        received = 0
        async for chunk in response.content.iter_any():
            received += len(chunk)
            if received > self._max_bytes:
                raise self._bad("sent a response larger than the gateway accepts")
            parts.append(chunk)
        return b"".join(parts)

    async def _status_error(self, response: aiohttp.ClientResponse) -> UpstreamError:
        """The domain error for a status of 300 or more, with the upstream's own message when it sent one."""
        try:
            raw = await asyncio.wait_for(response.content.read(64 * 1024), self._timeout)
        except (aiohttp.ClientError, TimeoutError, OSError):
            raw = b""
        message, code = error_details(raw, self._secret)
        headers = {k.lower(): v for k, v in response.headers.items()}
        html = is_html(raw, headers.get("content-type"))
        return error_for_status(response.status, message=message, code=code, headers=headers, html=html, **self._where)

    def _bad(self, what: str) -> UpstreamBadResponse:
        return UpstreamBadResponse(f"{self._where['provider']} {what}", **self._where)

    def _transport_error(self, exc: BaseException, *, started: bool) -> UpstreamError:
        """Before the response started, a broken connection means the upstream is unavailable; once it has
        started, the answer was cut short, which is a bad response."""
        provider = self._where["provider"]
        if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
            return UpstreamTimeout(f"{provider} did not answer in time", **self._where)
        what = _what_failed(exc)
        if started:
            return UpstreamBadResponse(f"{provider} cut the response short ({what})", **self._where)
        return UpstreamUnavailable(f"{provider} could not be reached ({what})", **self._where)


def _what_failed(exc: BaseException) -> str:
    """Plain words for a network failure: exception class names are internals and never reach a client."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connection failed"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "the connection closed early"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "the connection broke the HTTP protocol"
    return "the connection was lost"


def error_details(raw: bytes, secret: str | None) -> tuple[str, str | None]:
    """The message and code of an upstream's error body, redacted: OpenAI's ``{"error": {"message", "code"}}``,
    Anthropic's ``{"type": "error", "error": {"type", "message"}}``, a bare ``{"message"}``, or an HTML page."""
    text = raw.decode("utf-8", "replace")
    if is_html(text):
        return "(an HTML page)", None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return redact(text, secret), None
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, str):
        return redact(error, secret), None
    if not isinstance(error, dict):
        return "", None
    message = error.get("message") or error.get("detail") or ""
    code = error.get("code") or error.get("type")
    return redact(str(message), secret), code if isinstance(code, str) else None

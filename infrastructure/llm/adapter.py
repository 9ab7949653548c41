"""What every remote provider adapter shares, whichever provider and client: its deployment, its key (never shown),
how it reports a bad answer or a stream that broke, and how a stream's network reads become domain events."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from typing import Self

import orjson

from domain.llm.model import (
    Completion,
    CompletionRequest,
    FinishReason,
    ModelSpec,
    ServedBy,
    StreamEvent,
    StreamOpened,
    TextDelta,
    TokenUsage,
    UpstreamEvent,
    with_partial,
)
from domain.llm.tokens import estimated_usage
from domain.shared.errors import UpstreamBadResponse, UpstreamError
from infrastructure.llm.transport import Transport
from infrastructure.llm.upstream_errors import SHAPE_FAILURES
from infrastructure.llm.wire import SSEEvent, UpstreamHTTP

Reader = Callable[[SSEEvent], Iterable[StreamEvent]]


def joined(pieces: list[str]) -> TextDelta:
    """The text deltas that arrived in one network read, as one (emptying ``pieces``): everything after the read
    (the gateway, the SSE writer, the socket) then works once per read instead of once per token."""
    delta = TextDelta("".join(pieces))
    pieces.clear()
    return delta


async def per_read(batches: AsyncGenerator[list[SSEEvent], None], read: Reader) -> AsyncGenerator[UpstreamEvent, None]:
    """The domain events of each network read (``read`` turns one server-sent event into them), consecutive text
    deltas joined. Chunks spaced in time still go on one by one, as they arrive. ``StreamOpened`` comes first, once
    the first read has been understood (an OpenAI role chunk, Anthropic's ``message_start``): the front doors answer
    then, not when the first text comes; an error in that first read is still a failure to open (retried, or a
    fallback). On a failure the text already read is handed on first: the partial answer attached to the error holds
    it, so the caller must have seen it."""
    text: list[str] = []
    opened = False
    try:
        async for batch in batches:
            for sse in batch:
                for event in read(sse):
                    if isinstance(event, TextDelta):
                        text.append(event.text)
                        continue
                    if not opened:
                        opened = True
                        yield StreamOpened()
                    if text:
                        yield joined(text)
                    yield event
            if not opened:
                opened = True
                yield StreamOpened()
            if text:
                yield joined(text)
    except Exception:
        if text:
            if not opened:
                yield StreamOpened()
            yield joined(text)
        raise


class DeploymentAdapter:
    """The deployment an adapter calls (what it is, and how it is reached), for what every adapter says about it."""

    _http: UpstreamHTTP  # the direct adapters' connections (the SDK adapters have none)

    def __init__(self, spec: ModelSpec, *, transport: Transport, api_key: str | None) -> None:
        self._spec = spec
        self._transport = transport
        self._secret = api_key
        self._served_by = ServedBy(
            model=spec.name, provider=spec.provider, upstream_model=spec.upstream_model, variant=spec.variant
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self._spec.name!r}, upstream_model={self._spec.upstream_model!r})"

    def _keyed(self, secret: str, headers: Mapping[str, str]) -> Self:
        """This adapter with a user's key: the same deployment and connections, ``headers`` carrying the key."""
        clone = copy.copy(self)
        clone._secret = secret
        clone._http = self._http.authorized(headers, secret)
        return clone

    def _bad(self, what: str) -> UpstreamBadResponse:
        return UpstreamBadResponse(f"{self._spec.provider} {what}", provider=self._spec.provider, model=self._spec.name)

    def _with_partial(
        self, error: UpstreamError, request: CompletionRequest, text: str, usage: TokenUsage | None
    ) -> UpstreamError:
        """``error`` with what the stream had produced attached (nothing when it had produced no text)."""
        if text:
            partial = Completion(
                content=text,
                finish_reason=FinishReason.ERROR,
                usage=usage or estimated_usage(request, text),
                served_by=self._served_by,
            )
            with_partial(error, partial)
        return error

    async def _forward(
        self,
        batches: AsyncGenerator[list[SSEEvent], None],
        read: Reader,
        broken: Callable[[UpstreamError], UpstreamError],
    ) -> AsyncGenerator[UpstreamEvent, None]:
        """``per_read``'s events; a failure goes through ``broken`` (which attaches the partial answer), and the
        upstream response is closed however this ends (the consumer may leave early)."""
        try:
            async with contextlib.aclosing(per_read(batches, read)) as events:
                async for event in events:
                    yield event
        except UpstreamError as exc:
            raise broken(exc) from None
        except (*SHAPE_FAILURES, orjson.JSONDecodeError) as exc:
            raise broken(self._bad(f"sent an unreadable stream event ({exc})")) from None
        finally:
            await batches.aclose()  # closing the network reads releases the response

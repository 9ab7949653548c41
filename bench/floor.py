"""The floor under any gateway on this stack: what uvicorn, the ASGI framework and Redis cost before Switchboard adds
anything, measured with the peer harness like the gateways themselves.

- ``bare``: a bare ASGI function that forwards the body to the fake upstream through one pooled aiohttp session and
  returns its answer (no framework, no authentication, no limits);
- ``framework``: the same behind FastAPI, a mounted Starlette app and route (``Request``/``Response``) and two
  pure-ASGI middleware that add a header, as Switchboard's ``/v1`` is served; ``FLOOR_REDIS_CALLS=N`` adds N
  sequential script calls to Redis per request through redis-py (``FLOOR_REDIS_URL``, default db 9).

With the harness's fake upstream on port 9000 (``../shared/peers/fake_upstream.py``), from the project root::

    taskset -c 0 .venv/bin/uvicorn bench.floor:bare --port 8099 --loop uvloop --http httptools --no-access-log &
    PID=$! CONC="1 64" STREAM_CONC="" TTFB_N=0 TTFB_SLOW_N=0 \\
        bash ../shared/peers/run_peer_bench.sh floor http://127.0.0.1:8099 -H "Authorization: Bearer x"

(``bench.floor:framework`` for the second, with ``FLOOR_REDIS_CALLS=3`` for the third.) Figures of 2026-12-07 are
in the README ("Third round").
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

UPSTREAM = os.environ.get("FLOOR_UPSTREAM", "http://127.0.0.1:9000/v1/chat/completions")
HEADERS = {"authorization": "Bearer sk-fake-upstream", "content-type": "application/json"}
REDIS_CALLS = int(os.environ.get("FLOOR_REDIS_CALLS", "0"))
REDIS_URL = os.environ.get("FLOOR_REDIS_URL", "redis://127.0.0.1:6379/9")
COUNT = "return redis.call('INCR', KEYS[1])"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_state: dict[str, Any] = {}


async def _forward(body: bytes) -> bytes:
    session: aiohttp.ClientSession = _state["session"]
    async with session.post(UPSTREAM, data=body, headers=HEADERS) as answer:
        return await answer.read()


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _state["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _state["session"].close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    data = await _forward(body)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})


async def _chat(request: Request) -> Response:
    body = await request.body()
    for _ in range(REDIS_CALLS):
        await _state["count"](keys=["floor:count"])
    return Response(await _forward(body), media_type="application/json")


class _Header:
    """A pure-ASGI middleware adding a response header, like the request-context and security-header ones."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-floor", b"1")]
            await send(message)

        await self.app(scope, receive, with_header)


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    _state["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
    client = aioredis.Redis.from_url(REDIS_URL)
    _state["count"] = client.register_script(COUNT)
    yield
    await _state["session"].close()
    await client.aclose()


framework = FastAPI(
    lifespan=_lifespan, routes=[Mount("/v1", Starlette(routes=[Route("/chat/completions", _chat, methods=["POST"])]))]
)
framework.add_middleware(_Header)
framework.add_middleware(_Header)

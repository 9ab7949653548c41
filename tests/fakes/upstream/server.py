"""The fake upstream server: its settings, the script tests push, the requests it recorded, its lifecycle on a
loopback port, and the routing of each request to its endpoint."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import uvicorn

from tests.fakes.upstream import (
    anthropic_wire,
    azure_wire,
    bedrock_routes,
    bedrock_wire,
    control,
    gemini_routes,
    gemini_wire,
    handlers,
    openai_wire,
)
from tests.fakes.upstream.behaviours import OK, Behaviour, error
from tests.fakes.upstream.embeddings import SERVED_PATH as EMBEDDINGS_PATH
from tests.fakes.upstream.thread import UpstreamThread
from tests.fakes.upstream.transport import (
    Exchange,
    Receive,
    Scope,
    Send,
    Server,
    bind,
    http_impl,
    install_abort_log_filter,
    parse_json,
    read_body,
)


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Lower-case header names; a repeated header keeps its last value."""
    json: Any
    """The parsed JSON body (``None`` when empty or not JSON)."""
    body: bytes

    @property
    def model(self) -> str | None:
        model = self.json.get("model") if isinstance(self.json, dict) else None
        return model if isinstance(model, str) else None

    @property
    def api_key(self) -> str | None:
        """The key sent as ``x-api-key`` or as ``Authorization: Bearer``."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth[:7].lower() == "bearer " else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "json": self.json,
        }


class FakeUpstream:
    """A fake OpenAI + Anthropic API server (raw ASGI app served by uvicorn on 127.0.0.1).

    Usage::

        async with FakeUpstream() as up:
            up.push(rate_limited(retry_after=1), ok())
            client = openai.AsyncOpenAI(base_url=f"{up.base_url}/v1", api_key="sk-test")
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        api_key: str | None = None,
        record: bool = True,
        openai_models: Sequence[str] = openai_wire.DEFAULT_MODELS,
        anthropic_models: Sequence[str] = anthropic_wire.DEFAULT_MODELS,
        shutdown_grace: float = 0.05,
        reject_anthropic_system_role: bool = False,
    ) -> None:
        """
        ``latency``: seconds before every completion response; ``chunk_delay``: seconds between
        stream events; ``api_key``: when set, any other key gets a 401 (a missing key always does);
        ``record``: keep every request in :attr:`requests` (turn off for long benchmarks);
        ``shutdown_grace``: how long :meth:`stop` lets in-flight responses finish before cutting them;
        ``reject_anthropic_system_role``: answer a ``role: "system"`` entry in Anthropic ``messages``
        with the 400 the API used to give (anthropic 2.x's ``MessageParam`` allows such entries, so they
        are accepted by default).
        """
        self.host = host
        self.port = port
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.api_key = api_key
        # More keys accepted besides ``api_key`` (the keys users bring, in the tests of provider credentials).
        self.other_keys: set[str] = set()
        self.record = record
        self.openai_models = list(openai_models)
        self.anthropic_models = list(anthropic_models)
        self.shutdown_grace = shutdown_grace
        self.reject_anthropic_system_role = reject_anthropic_system_role

        self.base_url: str = ""
        self.requests: list[RecordedRequest] = []
        self.request_count = 0
        self.in_flight = 0
        """Requests being answered; once 0 after a call, its answer is counted in the counters."""
        self.completions_served = 0
        self.embeddings_served = 0
        self.served: Counter[str] = Counter()
        """Successful answers per upstream path (``/v1/chat/completions``, ``/v1/messages``, ``/v1/embeddings``)."""

        self._queue: deque[Behaviour] = deque()
        self._failing: dict[str, Behaviour] = {}
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    # ---- scripting & inspection ------------------------------------------------------------------

    def push(self, *behaviours: Behaviour) -> None:
        """Queue behaviours; each completion request pops the next one (FIFO)."""
        self._queue.extend(behaviours)

    @property
    def pending(self) -> list[Behaviour]:
        return list(self._queue)

    def fail_model(self, model: str, status: int = 500, **error_kwargs: Any) -> None:
        """Make every request for ``model`` fail with ``error(status, **error_kwargs)``."""
        self._failing[model] = error(status, **error_kwargs)

    def unfail_model(self, model: str) -> None:
        self._failing.pop(model, None)

    def reset(self) -> None:
        """Forget recorded requests, counters, queued behaviours and failing models."""
        self._queue.clear()
        self._failing.clear()
        self.requests.clear()
        self.request_count = 0
        self.completions_served = 0
        self.embeddings_served = 0
        self.served.clear()

    @property
    def last_request(self) -> RecordedRequest:
        if not self.requests:
            raise LookupError("no request recorded")
        return self.requests[-1]

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    # ---- what the endpoints use (see handlers.Upstream) -------------------------------------------

    def next_behaviour(self) -> Behaviour:
        """Pop the next queued behaviour (a plain success when none is queued)."""
        try:
            return self._queue.popleft()
        except IndexError:
            return OK

    def failing(self, model: str) -> Behaviour | None:
        """The error every request for ``model`` gets (see :meth:`fail_model`), if any."""
        return self._failing.get(model)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):024d}"

    def count_served(self, path: str) -> None:
        """Count one successful answer on ``path``."""
        self.served[path] += 1
        if path in (EMBEDDINGS_PATH, gemini_wire.EMBED_PATH):
            self.embeddings_served += 1
        else:
            self.completions_served += 1

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("already started")
        install_abort_log_filter()
        sock = bind(self.host, self.port)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self.base_url = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(
            self,
            lifespan="off",
            http=http_impl(),
            interface="asgi3",
            log_config=None,
            proxy_headers=False,
            server_header=False,
            backlog=4096,
            timeout_keep_alive=30,
        )
        server = Server(config, grace=self.shutdown_grace)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name=f"fake-upstream:{self.port}")
        while not server.started:
            if self._task.done():
                self._server = None
                await self._task  # re-raises the startup error
                raise RuntimeError("fake upstream exited during startup")
            await asyncio.sleep(0.001)

    def request_stop(self) -> None:
        """Ask the server to stop (from its own event loop); see :meth:`wait_closed`."""
        if self._server is not None:
            self._server.request_exit()

    async def wait_closed(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.request_exit()
        try:
            await self._task
        finally:
            self._server = None
            self._task = None
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> UpstreamThread:
        """Start a fake (constructed with ``kwargs``) on its own event loop in a daemon thread."""
        handle = UpstreamThread(cls(**kwargs))
        handle.start()
        return handle

    # ---- ASGI entry point ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if scope["type"] != "http":
            return None
        raw = await read_body(receive)
        if raw is None:
            return None
        path: str = scope["path"]
        method: str = scope["method"]
        headers: dict[str, str] = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        parsed, bad_json = parse_json(raw)
        if path.startswith("/_fake/"):
            return await control.answer(self, method, path, parsed, Exchange(receive, send))

        self.request_count += 1
        query = scope.get("query_string", b"").decode("latin-1")
        if self.record:
            self.requests.append(RecordedRequest(method, path, query, headers, parsed, raw))
        ex = Exchange(receive, send)
        self.in_flight += 1
        try:
            if path.startswith(bedrock_wire.PREFIX):
                raw_path = scope.get("raw_path", path.encode()).decode("latin-1")
                return await bedrock_routes.route(self, raw_path, headers, parsed, raw, bad_json, ex)
            if method == "GET" and path == gemini_wire.PREFIX.rstrip("/"):
                return await gemini_routes.list_models(self, headers, ex)
            if path.startswith(gemini_wire.PREFIX):
                return await gemini_routes.route(self, method, path, query, headers, parsed, bad_json, ex)
            if path.startswith(azure_wire.PREFIX):
                return await azure_wire.route(self, method, path, query, headers, parsed, bad_json, ex)
            return await self._route(method, path, headers, parsed, bad_json, ex)
        finally:
            self.in_flight -= 1
            ex.close()

    async def _route(
        self, method: str, path: str, headers: dict[str, str], body: Any, bad_json: bool, ex: Exchange
    ) -> Any:
        if method == "POST" and path == "/v1/chat/completions":
            return await handlers.completion(self, "openai", headers, body, bad_json, ex)
        if method == "POST" and path == "/v1/messages":
            return await handlers.completion(self, "anthropic", headers, body, bad_json, ex)
        if method == "POST" and path == "/v1/embeddings":
            return await handlers.embed(self, headers, body, bad_json, ex)
        if method == "POST" and path == "/v1/messages/count_tokens":
            return await handlers.count_tokens(self, headers, body, bad_json, ex)
        if method == "POST" and path == "/v1/responses/input_tokens":
            return await handlers.input_tokens(self, headers, body, bad_json, ex)
        if method == "GET" and (path == "/v1/models" or path.startswith("/v1/models/")):
            return await handlers.models(self, path, headers, ex)
        return await handlers.not_found(self, method, path, headers, ex)

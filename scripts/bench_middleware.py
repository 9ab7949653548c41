"""What the request middleware adds per request: CPU and wall time, measured by calling the ASGI app in-process.

    uv run python scripts/bench_middleware.py [requests]

Compares a minimal ASGI app alone with the same app behind ``RequestMiddleware`` (request id, client address,
headers, Server-Timing, metrics, one JSON access log line to a discarded sink), with tracing off and on.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from infrastructure.observability.logging import captured_logs, configure_logging
from infrastructure.observability.metrics import Metrics
from interfaces.http.middleware import RequestMiddleware


class _Route:
    path = "/api/v1/things/{thing_id}"


async def minimal_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    scope["route"] = _Route
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/things/42",
        "headers": [(b"host", b"x"), (b"user-agent", b"bench"), (b"x-request-id", b"bench-1")],
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


async def measure(app: Any, requests: int) -> tuple[float, float]:
    for _ in range(500):  # warm up: label children, cached loggers
        await app(_scope(), _receive, _send)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(requests):
        await app(_scope(), _receive, _send)
    return (time.process_time() - cpu) / requests * 1e6, (time.perf_counter() - wall) / requests * 1e6


async def main(requests: int) -> None:
    configure_logging(level="INFO", json=True)
    with captured_logs() as sink:
        sink.write = lambda text: len(text)  # type: ignore[method-assign]  # discard: measure rendering, not I/O
        base_cpu, base_wall = await measure(minimal_app, requests)
        plain = RequestMiddleware(minimal_app, max_body_bytes=1 << 20, metrics=Metrics())
        cpu, wall = await measure(plain, requests)
        tracer = TracerProvider().get_tracer("bench")
        traced = RequestMiddleware(minimal_app, max_body_bytes=1 << 20, metrics=Metrics(), tracer=tracer)
        t_cpu, t_wall = await measure(traced, requests)
    print(f"{requests} requests, in-process ASGI calls")
    print(f"  app alone:                      {base_cpu:7.1f} us CPU  {base_wall:7.1f} us wall")
    print(f"  + middleware (tracing off):     {cpu - base_cpu:7.1f} us CPU  {wall - base_wall:7.1f} us wall added")
    print(f"  + middleware (tracing on, SDK): {t_cpu - base_cpu:7.1f} us CPU  {t_wall - base_wall:7.1f} us wall added")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))

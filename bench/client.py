"""A small closed-loop HTTP/1.1 load client on raw asyncio streams and httptools.

``wrk`` cannot time the first byte of a streamed body, so streaming scenarios use this client, and every scenario
does when ``wrk`` is missing. Each of ``--concurrency`` connections sends one request, reads the whole response
(Content-Length or chunked, parsed by httptools), records the time to the first body byte and to the last, and
sends the next, until ``--duration`` is up. It prints one JSON object (a ``LoadResult``) on stdout.

    python -m bench.client --url http://127.0.0.1:8000 --paths /v1/chat/completions --body-file body.json \
        --auth sk-sb-... --concurrency 16 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httptools

from bench.stats import LoadResult, non_zero, summarize

TOOL = "async-client"


class _Response:
    """httptools callbacks for one response."""

    __slots__ = ("complete", "first_body_ns")

    def __init__(self) -> None:
        self.first_body_ns = 0
        self.complete = False

    def on_body(self, body: bytes) -> None:
        if not self.first_body_ns:
            self.first_body_ns = time.perf_counter_ns()

    def on_message_complete(self) -> None:
        self.complete = True


def build_request(host: str, path: str, body: bytes, auth: str | None, method: str = "POST") -> bytes:
    """The bytes of one keep-alive HTTP/1.1 request with a JSON body."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json", "Connection: keep-alive"]
    if auth:
        lines.append(f"Authorization: Bearer {auth}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class LoadClient:
    def __init__(
        self,
        *,
        url: str,
        requests: Sequence[bytes],
        concurrency: int,
        duration: float,
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.requests = itertools.cycle(requests)
        self.concurrency = concurrency
        self.duration = duration
        self.timeout = timeout
        self.latency_ms: list[float] = []
        self.ttfb_ms: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self._deadline = 0.0

    async def run(self) -> LoadResult:
        started = time.perf_counter()
        self._deadline = started + self.duration
        await asyncio.gather(*(self._connection() for _ in range(self.concurrency)))
        elapsed = time.perf_counter() - started
        errors = dict(self.errors)
        errors["status"] = sum(n for status, n in self.statuses.items() if not 200 <= status < 300)
        return LoadResult(
            tool=TOOL,
            concurrency=self.concurrency,
            duration_s=elapsed,
            requests=sum(self.statuses.values()),
            ok=sum(n for status, n in self.statuses.items() if 200 <= status < 300),
            errors=non_zero(errors),
            latency_ms=summarize(self.latency_ms),
            ttfb_ms=summarize(self.ttfb_ms),
        )

    async def _connection(self) -> None:
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while time.perf_counter() < self._deadline:
            if streams is None:
                streams = await self._connect()
                if streams is None:
                    await asyncio.sleep(0.01)
                    continue
            if not await self._one(*streams):
                _close(streams[1])
                streams = None
        if streams is not None:
            _close(streams[1])

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        except (OSError, TimeoutError):
            self.errors["connect"] += 1
            return None

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request and its whole response; False when the connection is no longer usable."""
        response = _Response()
        parser = httptools.HttpResponseParser(response)
        start = time.perf_counter_ns()
        try:
            async with asyncio.timeout(self.timeout):
                writer.write(next(self.requests))
                while not response.complete:
                    data = await reader.read(65536)
                    if not data:
                        raise ConnectionResetError("closed by the server")
                    parser.feed_data(data)
        except TimeoutError:
            self.errors["timeout"] += 1
            return False
        except (OSError, httptools.HttpParserError):
            self.errors["read"] += 1
            return False
        end = time.perf_counter_ns()
        self.statuses[parser.get_status_code()] += 1
        self.latency_ms.append((end - start) / 1e6)
        self.ttfb_ms.append(((response.first_body_ns or end) - start) / 1e6)
        return bool(parser.should_keep_alive())


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.client", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="scheme://host:port (the path comes from --paths)")
    parser.add_argument("--paths", required=True, help="comma-separated paths, used in turn")
    parser.add_argument("--body-file", required=True, type=Path)
    parser.add_argument("--auth", default=None, help="bearer credential")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    body = args.body_file.read_bytes()
    host = urlsplit(args.url).netloc
    requests = [build_request(host, path, body, args.auth) for path in args.paths.split(",")]
    client = LoadClient(
        url=args.url, requests=requests, concurrency=args.concurrency, duration=args.duration, timeout=args.timeout
    )
    try:
        import uvloop

        result = uvloop.run(client.run())
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        result = asyncio.run(client.run())
    json.dump(result.to_dict(), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The command line of the fake upstream (``python -m tests.fakes.upstream``), as the benchmark runs it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from tests.fakes.upstream.server import FakeUpstream
from tests.fakes.upstream.transport import loop_factory


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    upstream = FakeUpstream(
        host=args.host,
        port=args.port,
        latency=args.delay_ms / 1000,
        chunk_delay=args.chunk_delay_ms / 1000,
        api_key=args.api_key,
        record=args.record,
    )
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_serve(upstream))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Fake OpenAI + Anthropic upstream (prints its base URL).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="latency before every completion")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between stream events")
    parser.add_argument("--api-key", default=None, help="only accept this key")
    parser.add_argument("--record", action="store_true", help="keep every request (GET /_fake/requests)")
    return parser


async def _serve(upstream: FakeUpstream) -> None:
    """Serve until SIGINT or SIGTERM, printing the base URL once listening."""
    await upstream.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, upstream.request_stop)
    print(upstream.base_url, flush=True)
    await upstream.wait_closed()
    await upstream.stop()

"""A real ``switchboard serve`` on a loopback port against clients that cost it memory or connections: an oversized
header is a 431, and heads, bodies and keep-alive connections that never finish are cut in bounded time while the
server goes on answering everyone else (a slowloris with a bounded number of sockets)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.conftest import TEST_SECRET
from tests.api.serving import ServerProcess, switchboard_process

pytestmark = pytest.mark.api
TIMEOUT = 1.0  # header, body and keep-alive deadlines of the server under test
SLACK = 3.0  # a loaded 2-core machine is late


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    env = {
        "SWITCHBOARD_DATABASE_URL": "memory://",
        "SWITCHBOARD_JWT_SECRET": TEST_SECRET,
        "SWITCHBOARD_MAX_HEADER_BYTES": "8192",
        "SWITCHBOARD_HEADER_TIMEOUT_SECONDS": str(TIMEOUT),
        "SWITCHBOARD_BODY_TIMEOUT_SECONDS": str(TIMEOUT),
        "SWITCHBOARD_KEEP_ALIVE_TIMEOUT_SECONDS": "1",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }
    async with switchboard_process(tmp_path_factory.mktemp("slow"), env) as running:
        yield running


async def _exchange(server: ServerProcess, request: bytes) -> bytes:
    """Sends ``request`` whole and reads until the server closes the connection (``b"reset"`` when it closed with
    the request still arriving: the kernel then resets the connection, and may drop the answer)."""
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(request)
            await writer.drain()
        return await asyncio.wait_for(reader.read(), TIMEOUT + SLACK)
    except ConnectionResetError:
        return b"reset"
    finally:
        writer.close()


async def test_a_header_over_the_limit_is_431_and_smaller_ones_pass(server: ServerProcess) -> None:
    answer = await _exchange(server, b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 9000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"application/problem+json" in answer
    assert b'"code":"headers_too_large"' in answer
    huge = await _exchange(server, b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 16 * 1024 * 1024)
    assert huge == b"reset" or huge.startswith(b"HTTP/1.1 431 ")  # cut long before the header could end
    many = b"".join(b"x-h%d: %s\r\n" % (i, b"b" * 100) for i in range(100))  # 10 KB in small headers
    answer = await _exchange(server, b"GET /health/live HTTP/1.1\r\nhost: x\r\n" + many + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")
    async with httpx.AsyncClient(base_url=server.url) as client:
        fine = await client.get("/health/live", headers={"x-medium": "c" * 4000})
        assert fine.status_code == 200


async def _slow(server: ServerProcess, first: bytes, drip: bytes | None) -> tuple[float, bytes]:
    """Connects, sends ``first``, then ``drip`` one byte every 0.2 s (or nothing); how long until the server closed
    the connection, and what it answered (``b"reset"``: closed while the client was still sending, so the kernel
    reset the connection and may have dropped the answer)."""
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.monotonic()

    async def dribble() -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(first)
            for byte in drip or b"":
                await asyncio.sleep(0.2)
                writer.write(bytes([byte]))
                await writer.drain()
            await asyncio.sleep(3600)

    sender = asyncio.create_task(dribble())
    try:
        answer = await asyncio.wait_for(reader.read(), TIMEOUT + 1 + SLACK)
    except ConnectionResetError:
        answer = b"reset"
    finally:
        sender.cancel()
        writer.close()
    return time.monotonic() - started, answer


async def test_slow_and_idle_clients_are_cut_while_others_are_served(server: ServerProcess) -> None:
    endless_head = (b"GET /health/live HTTP/1.1\r\nhost: x\r\n", b"x-slow: " + b"z" * 400)
    endless_body = (
        b"POST /api/v1/auth/register HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 500\r\n\r\n",
        b"{" * 400,
    )
    keep_alive = (b"GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n", None)
    idle = (b"", None)
    cases = [endless_head, endless_body, idle, keep_alive] * 10  # 40 sockets
    slow = [asyncio.create_task(_slow(server, first, drip)) for first, drip in cases]
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as client:
        for _ in range(10):  # meanwhile everyone else is answered at once
            assert (await client.get("/health/live")).status_code == 200
            await asyncio.sleep(0.1)
    results = await asyncio.gather(*slow)
    for (first, _), (seconds, answer) in zip(cases, results, strict=True):
        assert seconds < TIMEOUT + SLACK  # cut, though the client never stopped sending
        if first in (endless_head[0], endless_body[0]):
            assert answer == b"reset" or answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        elif first == keep_alive[0]:
            assert answer.startswith(b"HTTP/1.1 200 ")  # answered, then closed when idle
        else:
            assert answer in (b"", b"HTTP/1.1 408 ") or answer.startswith(b"HTTP/1.1 408 ")

"""Switchboard on a loopback port: an app served by uvicorn in the test's own event loop (``serving``), or a real
``switchboard serve`` process (``switchboard_process``).

``serving`` is for tests where the real network path matters (SDK clients, SSE) but the container must stay
reachable, to override a provider: unlike a server subprocess, the app object is right here. A process is for what
only a process has: signals, exit codes, uvicorn's own graceful shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # leave the test runner's signal handlers alone


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serves ``app`` (lifespan included) until the block ends; yields its base URL."""
    # IPPROTO_TCP, so that asyncio sets TCP_NODELAY on accepted sockets (no 40 ms Nagle stalls between SSE events).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = _Server(uvicorn.Config(app, lifespan="on", log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the server stopped during start-up")
        await asyncio.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class ServerProcess:
    """A ``switchboard serve`` subprocess on a loopback port; stdout and stderr go to ``log``."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def json_log(self) -> list[dict[str, Any]]:
        """The JSON lines of the log (``SWITCHBOARD_LOG_FORMAT=json``)."""
        return [orjson.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    async def stop(self, timeout: float) -> tuple[int, float]:
        """SIGTERM; the exit code and the seconds it took (killed and failed after ``timeout``)."""
        signalled = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(self.process.wait, timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"no exit {timeout} s after SIGTERM:\n{self.log.read_text()[-4000:]}")
        return code, time.monotonic() - signalled


@contextlib.asynccontextmanager
async def switchboard_process(
    workdir: Path, env: dict[str, str], *args: str, ready_timeout: float = 90
) -> AsyncIterator[ServerProcess]:
    """``switchboard serve`` with ``env`` over this process's environment (its other ``SWITCHBOARD_*`` variables
    left out), in ``workdir``, on a free port; yields once ``/health/ready`` answers 200, kills it if still running
    at the end."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")} | env
    command = [sys.executable, "-m", "interfaces.cli", "serve", "--port", str(port), *args]
    log = workdir / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=workdir, env=full_env, stdout=output, stderr=subprocess.STDOUT)
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        await _wait_until_ready(server, ready_timeout)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def _wait_until_ready(server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout  # a loaded 2-core CI machine imports slowly
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{server.url}/health/ready")).status_code == 200:
                    return
            if server.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start:\n{server.log.read_text()[-4000:]}")
            await asyncio.sleep(0.1)


@dataclass
class WorkerProcess:
    """A ``switchboard worker`` subprocess; stdout and stderr go to ``log``."""

    process: subprocess.Popen[bytes]
    log: Path


def start_worker(workdir: Path, env: dict[str, str], name: str = "worker") -> WorkerProcess:
    """``switchboard worker`` with ``env`` over this process's environment (its other ``SWITCHBOARD_*`` variables
    left out), in ``workdir``. Stop it with ``process.terminate()`` (drains) or ``process.kill()``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")} | env
    log = workdir / f"{name}.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli", "worker"],
            cwd=workdir,
            env=full_env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(process, log)

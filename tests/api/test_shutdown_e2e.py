"""SIGTERM under load, on a real server process: every started request completes, then the process exits 0.

Plain requests and SSE streams are in flight (the server's own in-flight gauge says so) when SIGTERM arrives. The
server stops accepting at once; short streams and plain requests finish normally; a stream too long for the grace
period ends with a final ``shutting_down`` event and its partial answer stored; the process exits 0 within the
grace period, without having to cancel anything.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.api.conftest import PASSWORD, TEST_SECRET
from tests.api.test_server_e2e import _free_port

pytestmark = pytest.mark.api
GRACE_SECONDS = 6  # streams are cut 4 s after SIGTERM
SHORT_STREAMS, PLAIN_REQUESTS = 6, 10
LONG_CONTENT = " ".join(f"word{i}" for i in range(80))  # ~8 s of chunks at 100 ms: longer than the grace


def _events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in raw.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((fields["event"], orjson.loads(fields["data"])))
    return events


def _in_flight(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("switchboard_http_requests_in_flight "):
            return float(line.split()[1])
    return 0.0


async def _wait_for_server(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90  # a loaded 2-core CI machine imports slowly
    async with httpx.AsyncClient(timeout=1) as client:
        while True:
            try:
                if (await client.get(f"{url}/health/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"server did not start:\n{log.read_text()}")
            await asyncio.sleep(0.1)


async def test_sigterm_under_load_drains_every_request_and_exits_0(tmp_path: Path) -> None:
    database, log = tmp_path / "switchboard.db", tmp_path / "server.log"
    port = _free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "SWITCHBOARD_JWT_SECRET": TEST_SECRET,
        "SWITCHBOARD_ARGON2_TIME_COST": "1",
        "SWITCHBOARD_ARGON2_MEMORY_KIB": "8",
        "SWITCHBOARD_ARGON2_PARALLELISM": "1",
        "SWITCHBOARD_LOCAL_FIRST_TOKEN_DELAY_MS": "1000",
        "SWITCHBOARD_LOCAL_CHUNK_DELAY_MS": "100",
        "SWITCHBOARD_LOG_FORMAT": "json",
    }
    command = [sys.executable, "-m", "interfaces.cli", "serve", "--migrate", "--port", str(port)]
    command += ["--graceful-timeout", str(GRACE_SECONDS)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_for_server(url, process, log)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
            signalled = await _load_then_sigterm(http, process)
        assert process.wait(timeout=GRACE_SECONDS + 10) == 0
        assert time.monotonic() - signalled < GRACE_SECONDS + 2  # drained, not killed at the deadline
    finally:
        if process.poll() is None:
            process.kill()
    lines = [orjson.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert not [line for line in lines if "graceful shutdown exceeded" in line["event"]]  # nothing was cancelled
    assert any(line["event"].startswith("stopping") for line in lines)
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT status, finish_reason FROM messages WHERE role = 'assistant'").fetchall()
    assert sorted(rows).count(("complete", "stop")) == SHORT_STREAMS + PLAIN_REQUESTS
    assert ("incomplete", "cancelled") in rows


async def _load_then_sigterm(http: httpx.AsyncClient, process: subprocess.Popen[bytes]) -> float:
    """Puts the load in flight, sends SIGTERM (returns when), checks what every request got."""
    assert (
        await http.post("/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD})
    ).is_success
    token = (await http.post("/api/v1/auth/token", data={"username": "ada@example.com", "password": PASSWORD})).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    conversations = [
        (await http.post("/api/v1/conversations", json={}, headers=headers)).json()["id"]
        for _ in range(SHORT_STREAMS + PLAIN_REQUESTS + 1)
    ]
    streaming = asyncio.Event()
    started: list[int] = []

    async def stream(cid: str, content: str) -> list[tuple[str, dict[str, Any]]]:
        body = {"content": content, "stream": True}
        raw = ""
        async with http.stream("POST", f"/api/v1/conversations/{cid}/messages", json=body, headers=headers) as sse:
            assert sse.status_code == 200
            async for chunk in sse.aiter_text():
                raw += chunk
                if "event: delta" in raw and len(started) < SHORT_STREAMS + 1:
                    started.append(1)
                    if len(started) == SHORT_STREAMS + 1:
                        streaming.set()
        return _events(raw)

    async def post(cid: str) -> httpx.Response:
        return await http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=headers)

    long_stream = asyncio.create_task(stream(conversations[0], LONG_CONTENT))
    short = " ".join(f"w{i}" for i in range(15))  # ~2 s of chunks: still going at SIGTERM, done well before the cut
    streams = [asyncio.create_task(stream(cid, short)) for cid in conversations[1 : SHORT_STREAMS + 1]]
    await asyncio.wait_for(streaming.wait(), 30)  # every stream has started sending
    posts = [asyncio.create_task(post(cid)) for cid in conversations[SHORT_STREAMS + 1 :]]
    deadline = time.monotonic() + 10
    while _in_flight((await http.get("/metrics")).text) < SHORT_STREAMS + 1 + PLAIN_REQUESTS + 1:
        assert time.monotonic() < deadline, "the load never got in flight"
    process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    await asyncio.sleep(0.5)
    with pytest.raises(httpx.ConnectError):  # no longer accepting
        await http.get("/health/live")

    for response in await asyncio.gather(*posts):
        assert response.status_code == 201, response.text
    for events in await asyncio.gather(*streams):
        assert events[-1][0] == "done"
    events = await long_stream
    name, final = events[-1]
    assert (name, final["code"], final["status"]) == ("error", "shutting_down", 503)
    assert 0 < len([e for e in events if e[0] == "delta"]) < 80
    return signalled


async def test_several_workers_share_their_metrics_and_stop_cleanly(tmp_path: Path) -> None:
    metrics_dir, log = tmp_path / "metrics", tmp_path / "server.log"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale, from a previous run")
    port = _free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": "memory://",
        "SWITCHBOARD_JWT_SECRET": TEST_SECRET,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "SWITCHBOARD_LOG_FORMAT": "json",
    }
    command = [sys.executable, "-m", "interfaces.cli", "serve", "--workers", "2", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_for_server(url, process, log)
        deadline = time.monotonic() + 60
        while len(list(metrics_dir.glob("gauge_livesum_*.db"))) < 2:  # both workers are up
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.1)
        limits = httpx.Limits(max_keepalive_connections=0)  # a new connection each time: either worker answers
        async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as http:
            for _ in range(20):
                assert (await http.get("/health/live")).status_code == 200
            scrapes = [(await http.get("/metrics")).text for _ in range(4)]
        series = 'switchboard_http_requests_total{method="GET",route="/health/live",status="200"}'
        for scrape in scrapes:
            assert f"{series} 20.0" in scrape  # the sum over workers, whichever one answered
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert not (metrics_dir / "counter_1.db").exists()  # stale files were cleared at start

"""No usage record is lost when a server under load is stopped: a real server process, a fake upstream that counts
the completions it served (and so billed), concurrent clients, SIGTERM in the middle of it all.

The server holds usage records in memory (batches of 25, flushed every 60 s, so most are still in the buffer when
the signal arrives); the graceful shutdown must drain the requests, then write every record. Afterwards the ledger
has exactly one successful record per completion the upstream served, and one record per call the clients saw.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import PASSWORD, TEST_SECRET
from tests.api.test_server_e2e import _free_port
from tests.fakes.upstream import FakeUpstream, UpstreamThread

pytestmark = pytest.mark.api

CATALOG = """
default_model = "chat"

[models.chat]
provider = "openai"
upstream_model = "gpt-4o-mini"
base_url = "{base}/v1"
api_key_env = "SB_E2E_OPENAI_KEY"
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.60
"""
CLIENTS = 8
LOAD = 40  # calls completed before the signal (however slow the machine, the shutdown happens under load)


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamThread]:
    with FakeUpstream.run_in_thread(latency=0.02, chunk_delay=0.005, record=False) as running:
        yield running


def _start(workdir: Path, upstream: UpstreamThread) -> tuple[subprocess.Popen[bytes], str]:
    catalog = workdir / "models.toml"
    catalog.write_text(CATALOG.format(base=upstream.base_url))
    port = _free_port()
    env = {
        **os.environ,
        "SB_E2E_OPENAI_KEY": "sk-e2e",
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'switchboard.db'}",
        "SWITCHBOARD_CATALOG_PATH": str(catalog),
        "SWITCHBOARD_JWT_SECRET": TEST_SECRET,
        "SWITCHBOARD_ARGON2_TIME_COST": "1",
        "SWITCHBOARD_ARGON2_MEMORY_KIB": "8",
        "SWITCHBOARD_ARGON2_PARALLELISM": "1",
        "SWITCHBOARD_USAGE_BATCH_SIZE": "25",
        "SWITCHBOARD_USAGE_FLUSH_INTERVAL_SECONDS": "60",
        "SWITCHBOARD_RATE_LIMIT_KEY_RPM": "0",
        "SWITCHBOARD_RATE_LIMIT_USER_RPM": "0",
        "SWITCHBOARD_RATE_LIMIT_USER_TPM": "0",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "interfaces.cli", "serve", "--migrate", "--port", str(port)]
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # imports alone can take a while on a busy machine
    while True:
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"server did not start:\n{output}")
        time.sleep(0.1)


async def _key(http: httpx.AsyncClient) -> dict[str, str]:
    await http.post("/api/v1/auth/register", json={"email": "load@example.com", "password": PASSWORD})
    token = (await http.post("/api/v1/auth/token", data={"username": "load@example.com", "password": PASSWORD})).json()
    jwt = {"Authorization": f"Bearer {token['access_token']}"}
    key = (await http.post("/api/v1/api-keys", json={"name": "load"}, headers=jwt)).json()["key"]
    return {"Authorization": f"Bearer {key}"}


async def _client(
    http: httpx.AsyncClient, auth: dict[str, str], index: int, stop: asyncio.Event, done: list[int]
) -> int:
    """Posts messages (every other one streamed) until the server stops answering; returns the calls it saw end."""
    cid = (await http.post("/api/v1/conversations", json={}, headers=auth)).json()["id"]
    completed = 0
    turn = 0
    while True:
        turn += 1
        body = {"content": f"client {index} turn {turn}", "stream": turn % 2 == 0}
        try:
            response = await http.post(f"/api/v1/conversations/{cid}/messages", json=body, headers=auth)
        except httpx.TransportError:
            return completed  # the server closed its socket: shutdown
        if response.status_code in (200, 201):
            completed += 1
            done.append(index)
        elif stop.is_set():
            return completed  # refused during shutdown
        else:
            pytest.fail(f"unexpected {response.status_code}: {response.text}")


async def test_a_graceful_shutdown_under_load_loses_no_usage_record(tmp_path: Path, upstream: UpstreamThread) -> None:
    process, url = _start(tmp_path, upstream)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            auth = await _key(http)
            stop, done = asyncio.Event(), []
            clients = [asyncio.create_task(_client(http, auth, i, stop, done)) for i in range(CLIENTS)]
            deadline = time.monotonic() + 60
            while len(done) < LOAD and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            stop.set()
            process.send_signal(signal.SIGTERM)  # with requests in flight on every client
            completed = sum(await asyncio.gather(*clients))
        assert await asyncio.to_thread(process.wait, 60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    with sqlite3.connect(tmp_path / "switchboard.db") as db:
        rows = dict(db.execute("SELECT status, count(*) FROM usage_records GROUP BY status").fetchall())
        costs = db.execute("SELECT count(*) FROM usage_records WHERE cost_micros <= 0").fetchone()[0]
    served = upstream.completions_served
    assert completed >= LOAD  # there was load
    assert rows.get("success", 0) == served  # every billed completion is in the ledger, once
    assert sum(rows.values()) >= completed
    assert costs == 0

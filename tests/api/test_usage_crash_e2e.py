"""No answered call goes unrecorded when the server is killed with SIGKILL: a real server process under concurrent
load (whole and streamed ``/v1/chat/completions``), killed at a random moment, restarted, killed again, restarted.

Once the backlog has drained (the journal replayed at start-up, the Redis stream's unacknowledged entries claimed
from the dead consumer), every answer a client received has its usage record, exactly one (no request id twice),
the ledger holds no more calls than the upstream served, and the budget counters agree with the ledger. On
PostgreSQL + Redis (the stream) and on the embedded default (SQLite + the journal).

A call can have a record without the client having its answer: the record is durable before the answer's last byte
leaves, and the process may die in between. So the records are a superset of the answers, never fewer.

Redis killed and restarted (its persistence off) under load: the records lost are those still in the stream at that
moment, whose calls were all answered shortly before it (within a move interval); every call answered after it (the
journal took them while Redis was away) and every record already in PostgreSQL is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from infrastructure.db.engine import create_engine
from tests.api.conftest import PASSWORD, TEST_SECRET
from tests.api.serving import ServerProcess, switchboard_process
from tests.conftest import DatabaseFactory
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
CLIENTS = 12
KILLS = 2
MOVE_INTERVAL = 0.2  # SWITCHBOARD_USAGE_FLUSH_INTERVAL_SECONDS: how often durable records move to the database
BUDGET = 10**12  # micro-dollars: never reached, but set, so that the counters are seeded at admission


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamThread]:
    with FakeUpstream.run_in_thread(latency=0.005, chunk_delay=0.002, record=False) as running:
        yield running


@dataclass
class Answers:
    """Request ids of the calls whose whole answer a client received, with when it arrived."""

    at: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _env(tmp_path: Path, upstream: UpstreamThread, database_url: str, **extra: str) -> dict[str, str]:
    catalog = tmp_path / "models.toml"
    catalog.write_text(CATALOG.format(base=upstream.base_url))
    return {
        "SB_E2E_OPENAI_KEY": "sk-e2e",
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_CATALOG_PATH": str(catalog),
        "SWITCHBOARD_JWT_SECRET": TEST_SECRET,
        "SWITCHBOARD_ARGON2_TIME_COST": "1",
        "SWITCHBOARD_ARGON2_MEMORY_KIB": "8",
        "SWITCHBOARD_ARGON2_PARALLELISM": "1",
        "SWITCHBOARD_RATE_LIMIT_KEY_RPM": "0",
        "SWITCHBOARD_RATE_LIMIT_USER_RPM": "0",
        "SWITCHBOARD_RATE_LIMIT_USER_TPM": "0",
        "SWITCHBOARD_USAGE_FLUSH_INTERVAL_SECONDS": str(MOVE_INTERVAL),
        "SWITCHBOARD_USAGE_CLAIM_IDLE_SECONDS": "0.5",
        "SWITCHBOARD_USAGE_JOURNAL_PATH": str(tmp_path / "journal"),
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
        **extra,
    }


async def _sql(database_url: str, statement: str) -> list[tuple[object, ...]]:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement))
            return [tuple(row) for row in result.fetchall()] if result.returns_rows else []
    finally:
        await engine.dispose()


async def _sign_up(url: str, database_url: str) -> tuple[dict[str, str], dict[str, str]]:
    """A user and an API key, both with a budget (so their counters are seeded before the first call)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await http.post("/api/v1/auth/register", json={"email": "load@example.com", "password": PASSWORD})
        form = {"username": "load@example.com", "password": PASSWORD}
        jwt = {"Authorization": f"Bearer {(await http.post('/api/v1/auth/token', data=form)).json()['access_token']}"}
        body = {"name": "load", "scopes": ["chat", "usage"]}
        key = (await http.post("/api/v1/api-keys", json=body, headers=jwt)).json()["key"]
    await _sql(database_url, f"UPDATE users SET monthly_budget_micros = {BUDGET}")
    await _sql(database_url, f"UPDATE api_keys SET monthly_budget_micros = {BUDGET}")
    return jwt, {"Authorization": f"Bearer {key}"}


async def _call(http: httpx.AsyncClient, key: dict[str, str], turn: int, answers: Answers) -> None:
    stream = turn % 2 == 0
    body = {"model": "chat", "messages": [{"role": "user", "content": f"turn {turn}"}], "stream": stream}
    if stream:
        async with http.stream("POST", "/v1/chat/completions", json=body, headers=key) as response:
            raw = "".join([chunk async for chunk in response.aiter_text()])
            complete = response.status_code == 200 and raw.rstrip().endswith("data: [DONE]")
    else:
        response = await http.post("/v1/chat/completions", json=body, headers=key)
        complete = response.status_code == 200 and bool(response.json()["choices"][0]["message"]["content"])
    if complete:
        answers.at[response.headers["x-request-id"]] = time.monotonic()
    else:
        answers.errors.append(f"{response.status_code}: {response.text if not stream else '(stream)'}")


@contextlib.asynccontextmanager
async def _load(url: str, key: dict[str, str], answers: Answers) -> AsyncIterator[None]:
    """Clients calling in a loop until the block ends or the server goes away."""
    stop = asyncio.Event()

    async def client(index: int) -> None:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
            turn = index
            while not stop.is_set():
                turn += CLIENTS
                try:
                    await _call(http, key, turn, answers)
                except httpx.TransportError:
                    await asyncio.sleep(0.01)  # the server is gone (killed) or not back yet

    tasks = [asyncio.create_task(client(i)) for i in range(CLIENTS)]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def _until(answers: Answers, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(answers.at) < count:
        assert time.monotonic() < deadline, f"the load did not get going: {answers.errors[-3:]}"
        await asyncio.sleep(0.02)


async def _kill_under_load(server: ServerProcess, key: dict[str, str], answers: Answers) -> None:
    """Puts the server under load and SIGKILLs it at a random moment."""
    async with _load(server.url, key, answers):
        await _until(answers, len(answers.at) + 20)
        await asyncio.sleep(random.uniform(0.05, 0.8))  # the kill point
        server.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(server.process.wait, 10)


async def _drained(database_url: str, answers: Answers, timeout: float = 30) -> list[tuple[object, ...]]:
    """The ledger's (request id, cost) rows once every answered call is in it."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await _sql(database_url, "SELECT request_id, cost_micros FROM usage_records")
        missing = set(answers.at) - {row[0] for row in rows}
        if not missing or time.monotonic() > deadline:
            assert not missing, f"{len(missing)} answered calls have no usage record"
            return rows
        await asyncio.sleep(0.1)


async def _assert_books_balance(
    url: str, database_url: str, auth: tuple[dict[str, str], dict[str, str]], answers: Answers, upstream: UpstreamThread
) -> None:
    jwt, key = auth
    rows = await _drained(database_url, answers)
    request_ids = [row[0] for row in rows]
    assert len(request_ids) == len(set(request_ids))  # one record per call: no redelivery stored twice
    assert len(answers.at) <= len(rows) <= upstream.completions_served
    spent: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for headers in (jwt, key):  # the user's budget, then also the key's
            report = (await http.get("/api/v1/usage", headers=headers)).json()
            spent |= {budget["scope"]: budget["spent_micros"] for budget in report["budgets"]}
    ledger = sum(int(str(row[1])) for row in rows)
    assert report["totals"]["cost_micros"] == ledger > 0
    assert spent == {"user": ledger, "api_key": ledger}  # the counters agree with the ledger


async def _crash_test(tmp_path: Path, env: dict[str, str], database_url: str, upstream: UpstreamThread) -> None:
    upstream.reset()
    answers = Answers()
    async with switchboard_process(tmp_path, env) as server:
        jwt, key = await _sign_up(server.url, database_url)
        await _kill_under_load(server, key, answers)
    for _ in range(KILLS - 1):
        async with switchboard_process(tmp_path, env) as server:  # the journal replayed, the stream claimed
            await _kill_under_load(server, key, answers)
    async with switchboard_process(tmp_path, env) as server:
        await _assert_books_balance(server.url, database_url, (jwt, key), answers, upstream)
    assert not answers.errors  # every call the server answered, it answered whole
    assert len(answers.at) >= KILLS * 20


async def test_sigkill_under_load_loses_no_answered_call_on_postgres_and_redis(
    tmp_path: Path,
    upstream: UpstreamThread,
    postgres_database_factory: DatabaseFactory,
    redis_url: str,
    redis_prefix: str,
) -> None:
    async with postgres_database_factory(migrate=True) as database_url:
        env = _env(
            tmp_path, upstream, database_url, SWITCHBOARD_REDIS_URL=redis_url, SWITCHBOARD_REDIS_KEY_PREFIX=redis_prefix
        )
        await _crash_test(tmp_path, env, database_url, upstream)
    assert not any((tmp_path / "journal").glob("*.journal"))  # Redis took every record: no fallback needed


async def test_sigkill_under_load_loses_no_answered_call_on_the_embedded_default(
    tmp_path: Path, upstream: UpstreamThread, sqlite_database_factory: DatabaseFactory
) -> None:
    async with sqlite_database_factory(migrate=True) as database_url:
        await _crash_test(tmp_path, _env(tmp_path, upstream, database_url), database_url, upstream)


async def _drained_since(database_url: str, answers: Answers, since: float) -> list[tuple[object, ...]]:
    """The ledger's request ids once every call answered after ``since`` is in it (or 20 s have passed)."""
    deadline = time.monotonic() + 20
    while True:
        rows = await _sql(database_url, "SELECT request_id FROM usage_records")
        owed = {request_id for request_id, at in answers.at.items() if at > since} - {row[0] for row in rows}
        if not owed or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.1)


# --- Redis killed and restarted, its persistence off --------------------------------------------------------


@contextlib.contextmanager
def _redis_server(port: int, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of this test's own, persistence off (as on this machine's shared one)."""
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        yield process
    finally:
        process.kill()
        process.wait(10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_redis_restart_without_persistence_loses_only_what_the_stream_still_held(
    tmp_path: Path, upstream: UpstreamThread, postgres_database_factory: DatabaseFactory
) -> None:
    upstream.reset()
    port = _free_port()
    answers = Answers()
    async with postgres_database_factory(migrate=True) as database_url:
        env = _env(tmp_path, upstream, database_url, SWITCHBOARD_REDIS_URL=f"redis://127.0.0.1:{port}/0")
        with _redis_server(port, tmp_path) as first, contextlib.ExitStack() as second:
            async with switchboard_process(tmp_path, env) as server:
                _, key = await _sign_up(server.url, database_url)
                async with _load(server.url, key, answers):
                    await _until(answers, 60)
                    first.kill()
                    first.wait(10)
                    killed = time.monotonic()
                    await _until(answers, len(answers.at) + 40)  # served meanwhile: the journal takes the records
                    second.enter_context(_redis_server(port, tmp_path))
                    await _until(answers, len(answers.at) + 40)  # Redis back: the stream again
                rows = await _drained_since(database_url, answers, killed + 0.5)
    stored = {row[0] for row in rows}
    lost = {request_id: at for request_id, at in answers.at.items() if request_id not in stored}
    after = [request_id for request_id, at in lost.items() if at > killed + 0.5]
    assert after == []  # every call answered once Redis was gone is recorded (journal, then stream)
    # What is lost: records the stream still held when Redis died, calls answered within a move interval of it
    # (plus the machine's scheduling slack).
    assert all(killed - at < MOVE_INTERVAL + 1.0 for at in lost.values()), sorted(killed - t for t in lost.values())
    assert len(rows) <= upstream.completions_served
    assert not answers.errors

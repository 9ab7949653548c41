"""SIGTERM with 50 streams open, on a real server process (PostgreSQL, the fake upstream streaming slowly).

Three stream shapes at once: OpenAI chat completions (``/v1/chat/completions``), Anthropic messages (``/v1/messages``)
and the native conversation stream (``/api/v1/conversations/{id}/messages``). SIGTERM arrives once every stream has
received its first piece of answer. Whatever happens next, every stream must end with its API's own final event,
never be cut off mid-answer or mid-event; every call must have exactly one usage record (by request id) once the
process has exited, with one successful record per completion the upstream served; the process must exit 0 within
the graceful shutdown period (``SWITCHBOARD_GRACEFUL_SHUTDOWN_SECONDS``), without uvicorn cancelling anything.

* ``drain``: the default 30 s grace. The streams have a few seconds of answer left: all of them complete normally
  and the process exits as soon as they have.
* ``cut``: a 6 s grace, shorter than what is left of every stream. The server ends each one 4 s after the signal
  with the API's shutdown error event, records the call as cancelled and stores the partial answers.
* silent at the cut: streams whose upstream has gone quiet when the grace runs out are cut by the server while they
  wait for the model: each ends with its API's shutdown event, is stored and billed once, and uvicorn cancels nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from infrastructure.db.engine import create_engine
from infrastructure.db.tables import messages, usage_records
from tests.api.conftest import PASSWORD, TEST_SECRET
from tests.api.serving import ServerProcess, switchboard_process
from tests.conftest import DatabaseFactory
from tests.fakes import upstream as fake
from tests.fakes.upstream import FakeUpstream, UpstreamThread

pytestmark = pytest.mark.api

CATALOG = """
default_model = "chat"

[models.chat]
provider = "openai"
upstream_model = "gpt-4o-mini"
base_url = "{base}/v1"
api_key_env = "SB_E2E_UPSTREAM_KEY"
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.60

[models.claude]
provider = "anthropic"
upstream_model = "claude-haiku-4-5"
base_url = "{base}"
api_key_env = "SB_E2E_UPSTREAM_KEY"
input_usd_per_mtok = 1.00
output_usd_per_mtok = 5.00
"""
KINDS = {"openai": 20, "native": 20, "anthropic": 10}  # 50 streams
CHUNK_DELAY = 0.25  # seconds between two upstream events
# Words per answer, so events per stream: opening all 50 takes a second or two, so every one is mid-answer at SIGTERM.
WORDS = {"drain": 24, "cut": 60}  # 7 s, done well within 30 s; 16 s, far beyond the cut 4 s after the signal
MAX_TOKENS = 400


@dataclass
class Stream:
    kind: str
    index: int
    request_id: str
    prompt: str
    status: int = 0
    raw: str = ""
    answering: asyncio.Event = field(default_factory=asyncio.Event)  # its first piece of answer arrived
    ended: bool = False
    broken: str | None = None  # the transport error that ended it, if one did

    def frames(self) -> list[dict[str, str]]:
        """The complete SSE frames received (``event`` and ``data`` fields)."""
        complete = self.raw[: self.raw.rfind("\n\n") + 2] if "\n\n" in self.raw else ""
        return [dict(line.split(": ", 1) for line in frame.splitlines()) for frame in complete.strip().split("\n\n")]

    def text(self) -> str:
        """The answer text the stream carried."""
        pieces = []
        for frame in self.frames():
            data = frame.get("data", "")
            if self.kind == "native" and frame.get("event") == "delta":
                pieces.append(orjson.loads(data)["text"])
            elif self.kind == "anthropic" and frame.get("event") == "content_block_delta":
                pieces.append(orjson.loads(data)["delta"].get("text", ""))
            elif self.kind == "openai" and data.startswith("{") and (choices := orjson.loads(data).get("choices")):
                pieces.append(choices[0]["delta"].get("content") or "")
        return "".join(pieces)

    def ending(self) -> str:
        """``complete`` (the API's normal end), ``shutdown`` (its shutdown error event) or what is wrong."""
        if self.broken is not None:
            return f"broken off: {self.broken}"
        if not self.raw.endswith("\n\n"):
            return f"cut mid-event: {self.raw[-120:]!r}"
        last = self.frames()[-1]
        data = last.get("data", "")
        if self.kind == "openai":
            if data == "[DONE]":
                return "complete" if '"finish_reason":"stop"' in self.raw else "done without a finish chunk"
            error = orjson.loads(data).get("error") if data.startswith("{") else None
            return "shutdown" if error and error["code"] == "shutting_down" else f"no final event: {data[:120]}"
        if self.kind == "anthropic":
            if last.get("event") == "message_stop":
                return "complete"
            if last.get("event") == "error" and orjson.loads(data)["error"]["type"] == "overloaded_error":
                return "shutdown"
            return f"no final event: {last}"
        if last.get("event") == "done":
            return "complete"
        if last.get("event") == "error" and orjson.loads(data)["code"] == "shutting_down":
            return "shutdown"
        return f"no final event: {last}"


@pytest.fixture
def upstream() -> Iterator[UpstreamThread]:
    with FakeUpstream.run_in_thread(chunk_delay=CHUNK_DELAY, record=False) as running:
        yield running


@pytest.mark.parametrize(("scenario", "grace"), [("drain", 30), ("cut", 6)])
async def test_sigterm_with_50_open_streams_ends_each_with_a_final_event_and_bills_each_once(
    scenario: str,
    grace: int,
    tmp_path: Path,
    upstream: UpstreamThread,
    postgres_database_factory: DatabaseFactory,
) -> None:
    async with postgres_database_factory(migrate=True) as database_url:
        async with switchboard_process(tmp_path, _env(tmp_path, upstream, database_url, grace=grace)) as server:
            streams, (code, took) = await _open_streams_then_sigterm(server, KINDS, grace, WORDS[scenario])
        usage, assistant = await _stored(database_url)

    endings = {(s.kind, s.index): s.ending() for s in streams}
    expected = "complete" if scenario == "drain" else "shutdown"
    assert {key: e for key, e in endings.items() if e != expected} == {}
    for stream in streams:
        assert stream.status == 200
        answer = f"Echo: {stream.prompt}"
        if expected == "complete":
            assert stream.text() == answer
        else:
            assert answer.startswith(stream.text())  # the partial answer, in order, nothing lost or repeated
            assert 0 < len(stream.text()) < len(answer)

    assert (code, took < grace) == (0, True), f"exit {code} after {took:.1f} s"
    assert not [line for line in server.json_log() if "graceful shutdown exceeded" in line["event"]]

    assert sorted(request_id for request_id, _ in usage) == sorted(s.request_id for s in streams)  # once each
    statuses = [status for _, status in usage]
    assert statuses.count("success") == upstream.completions_served
    assert statuses.count("success" if expected == "complete" else "cancelled") == len(streams)
    final = ("complete", "stop") if expected == "complete" else ("incomplete", "cancelled")
    assert assistant == [final] * KINDS["native"]


@dataclass
class SilentRun:
    streams: list[Stream]
    usage: list[tuple[str, str]]
    assistant: list[tuple[str, str | None]]
    exit_code: int
    log: list[dict[str, Any]]


@pytest.fixture(scope="module")
async def silent_at_the_cut(
    tmp_path_factory: pytest.TempPathFactory, postgres_database_factory: DatabaseFactory
) -> SilentRun:
    """One stream of each kind whose upstream sends a few words then falls silent (a model thinking, a stalled
    provider); SIGTERM with a 2 s grace, so the silence outlasts it."""
    kinds = {"openai": 1, "native": 1, "anthropic": 1}
    workdir = tmp_path_factory.mktemp("silent")
    with FakeUpstream.run_in_thread(chunk_delay=CHUNK_DELAY, record=False) as upstream:
        upstream.push(*[fake.hang(after_chunks=5)] * 3)
        async with postgres_database_factory(migrate=True) as database_url:
            async with switchboard_process(workdir, _env(workdir, upstream, database_url, grace=2)) as server:
                streams, (code, _) = await _open_streams_then_sigterm(server, kinds, 2, WORDS["drain"])
            usage, assistant = await _stored(database_url)
    return SilentRun(streams, usage, assistant, code, server.json_log())


async def test_a_stream_whose_upstream_is_silent_at_the_cut_ends_with_a_final_event_stored_and_billed_once(
    silent_at_the_cut: SilentRun,
) -> None:
    run = silent_at_the_cut
    assert {(s.kind, s.index): s.ending() for s in run.streams} == {
        (kind, 0): "shutdown" for kind in ("openai", "native", "anthropic")
    }
    assert not any("graceful shutdown exceeded" in line["event"] for line in run.log)  # the server ended them
    assert sorted(request_id for request_id, _ in run.usage) == sorted(s.request_id for s in run.streams)
    assert {status for _, status in run.usage} == {"cancelled"}
    assert run.assistant == [("incomplete", "cancelled")]  # the native stream's partial answer
    assert run.exit_code == 0


def _env(workdir: Path, upstream: UpstreamThread, database_url: str, *, grace: int) -> dict[str, str]:
    (workdir / "models.toml").write_text(CATALOG.format(base=upstream.base_url))
    return {
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_CATALOG_PATH": str(workdir / "models.toml"),
        "SWITCHBOARD_GRACEFUL_SHUTDOWN_SECONDS": str(grace),  # the setting, not the --graceful-timeout flag
        "SWITCHBOARD_USAGE_FLUSH_INTERVAL_SECONDS": "60",  # records wait in memory: the shutdown must write them
        "SWITCHBOARD_JWT_SECRET": TEST_SECRET,
        "SWITCHBOARD_ARGON2_TIME_COST": "1",
        "SWITCHBOARD_ARGON2_MEMORY_KIB": "8",
        "SWITCHBOARD_ARGON2_PARALLELISM": "1",
        "SWITCHBOARD_LOG_FORMAT": "json",
        "SWITCHBOARD_LOG_LEVEL": "INFO",
        "SB_E2E_UPSTREAM_KEY": "sk-e2e",
    }


async def _open_streams_then_sigterm(
    server: ServerProcess, kinds: dict[str, int], grace: int, words: int
) -> tuple[list[Stream], tuple[int, float]]:
    """Opens ``kinds[kind]`` streams of each kind (answers of ``words`` words), sends SIGTERM once each one is
    answering, reads them to their end; the exit code and the seconds from the signal to the exit."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:
        key, conversations = await _principal(http, kinds.get("native", 0))
        streams = [
            Stream(kind, i, f"sigterm-{kind}-{i}", f"{kind} {i} " + " ".join(f"w{n}" for n in range(words)))
            for kind, count in kinds.items()
            for i in range(count)
        ]
        reading = [asyncio.create_task(_read(http, s, key, conversations)) for s in streams]
        try:
            await asyncio.wait_for(asyncio.gather(*(s.answering.wait() for s in streams)), 60)
        except TimeoutError:
            pytest.fail(f"not all streams answering: {[(s.kind, s.index, s.status) for s in streams]}")
        assert not [s for s in streams if s.ended], "a stream ended before SIGTERM: make them longer"
        stopping = asyncio.create_task(server.stop(timeout=grace + 30))
        await asyncio.gather(*reading)
        return streams, await stopping


async def _read(http: httpx.AsyncClient, stream: Stream, key: str, conversations: list[str]) -> None:
    headers = {"Authorization": f"Bearer {key}", "X-Request-ID": stream.request_id}
    messages = [{"role": "user", "content": stream.prompt}]
    if stream.kind == "openai":
        path = "/v1/chat/completions"
        body: dict[str, Any] = {"model": "chat", "messages": messages, "max_tokens": MAX_TOKENS, "stream": True}
        body["stream_options"] = {"include_usage": True}
    elif stream.kind == "anthropic":
        path, headers["anthropic-version"] = "/v1/messages", "2023-06-01"
        body = {"model": "claude", "messages": messages, "max_tokens": MAX_TOKENS, "stream": True}
    else:
        path = f"/api/v1/conversations/{conversations[stream.index]}/messages"
        body = {"content": stream.prompt, "max_tokens": MAX_TOKENS, "stream": True}
    try:
        async with http.stream("POST", path, json=body, headers=headers) as response:
            stream.status = response.status_code
            async for chunk in response.aiter_text():
                stream.raw += chunk
                if not stream.answering.is_set() and stream.text():
                    stream.answering.set()
    except httpx.TransportError as exc:
        stream.broken = repr(exc)
    stream.ended = True


async def _principal(http: httpx.AsyncClient, conversations: int) -> tuple[str, list[str]]:
    """A user's API key and ``conversations`` conversations of theirs, through the API."""
    email = "streams@example.com"
    assert (await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})).status_code == 201
    token = (await http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})).json()
    jwt = {"Authorization": f"Bearer {token['access_token']}"}
    key = (await http.post("/api/v1/api-keys", json={"name": "streams"}, headers=jwt)).json()["key"]
    ids = [(await http.post("/api/v1/conversations", json={}, headers=jwt)).json()["id"] for _ in range(conversations)]
    return key, ids


async def _stored(database_url: str) -> tuple[list[tuple[str, str]], list[tuple[str, str | None]]]:
    """The usage records (request id, status) and the assistant messages (status, finish reason) in the database."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            usage = (await connection.execute(select(usage_records.c.request_id, usage_records.c.status))).all()
            query = select(messages.c.status, messages.c.finish_reason).where(messages.c.role == "assistant")
            assistant = (await connection.execute(query)).all()
    finally:
        await engine.dispose()
    return [(row[0], row[1]) for row in usage], [(row[0], row[1]) for row in assistant]

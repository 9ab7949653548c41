"""End to end against a real server process on a loopback port: the quick-start path, SSE and disconnects."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.api.conftest import PASSWORD, TEST_SECRET

pytestmark = pytest.mark.api
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    database: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("server")
    database = workdir / "switchboard.db"
    port = _free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "SWITCHBOARD_JWT_SECRET": TEST_SECRET,
        "SWITCHBOARD_ARGON2_TIME_COST": "1",
        "SWITCHBOARD_ARGON2_MEMORY_KIB": "8",
        "SWITCHBOARD_ARGON2_PARALLELISM": "1",
        "SWITCHBOARD_LOCAL_CHUNK_DELAY_MS": "40",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "interfaces.cli", "serve", "--migrate", "--port", str(port)]
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # generous: a loaded CI machine imports slowly
    while True:
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"server did not start:\n{output}")
        time.sleep(0.1)
    yield Server(url=url, process=process, database=database)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


async def _user_with_key(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    assert (await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})).status_code == 201
    token = (await http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})).json()
    jwt = {"Authorization": f"Bearer {token['access_token']}"}
    key = (await http.post("/api/v1/api-keys", json={"name": "e2e"}, headers=jwt)).json()["key"]
    return {"Authorization": f"Bearer {key}"}


async def test_the_quick_start_story(server: Server, http: httpx.AsyncClient) -> None:
    """Register, log in, create a key, chat with it; someone else sees none of it."""
    ada = await _user_with_key(http, "ada@example.com")
    conversation = (await http.post("/api/v1/conversations", json={"title": "First"}, headers=ada)).json()
    answer = await http.post(
        f"/api/v1/conversations/{conversation['id']}/messages", json={"content": "Hi"}, headers=ada
    )
    assert answer.status_code == 201
    assert "Hi" in answer.json()["assistant_message"]["content"]
    assert server.database.exists()

    bob = await _user_with_key(http, "bob@example.com")
    assert (await http.get(f"/api/v1/conversations/{conversation['id']}", headers=bob)).status_code == 404
    assert (await http.get("/api/v1/conversations", headers=bob)).json()["items"] == []


def _events(raw: str) -> list[tuple[str, str]]:
    events = []
    for frame in raw.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((fields["event"], fields["data"]))
    return events


async def test_streaming_sends_deltas_as_they_are_produced(http: httpx.AsyncClient) -> None:
    ada = await _user_with_key(http, "stream@example.com")
    cid = (await http.post("/api/v1/conversations", json={}, headers=ada)).json()["id"]
    arrivals: list[float] = []
    raw = ""
    async with http.stream(
        "POST", f"/api/v1/conversations/{cid}/messages", json={"content": "one two three", "stream": True}, headers=ada
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for chunk in response.aiter_text():
            arrivals.append(time.monotonic())
            raw += chunk
    events = _events(raw)
    names = [name for name, _ in events]
    assert names[-1] == "done"
    assert names.count("delta") >= 5
    # Chunks reached us spread over time (40 ms apart upstream), not in one buffered burst at the end.
    assert arrivals[-1] - arrivals[0] > 0.1
    detail = (await http.get(f"/api/v1/conversations/{cid}", headers=ada)).json()
    assert [m["status"] for m in detail["messages"]] == ["complete", "complete"]


async def test_a_client_leaving_mid_stream_still_gets_its_partial_answer_stored(http: httpx.AsyncClient) -> None:
    ada = await _user_with_key(http, "leaver@example.com")
    cid = (await http.post("/api/v1/conversations", json={}, headers=ada)).json()["id"]
    body = {"content": "a long question with many words in it to answer slowly", "stream": True}
    async with http.stream("POST", f"/api/v1/conversations/{cid}/messages", json=body, headers=ada) as response:
        async for chunk in response.aiter_text():
            if "event: delta" in chunk:
                break  # leave after the first delta: the connection is closed
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        messages = (await http.get(f"/api/v1/conversations/{cid}", headers=ada)).json()["messages"]
        if messages:
            break
        await asyncio.sleep(0.1)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assistant = messages[1]
    assert assistant["status"] == "incomplete"
    assert assistant["finish_reason"] == "cancelled"
    assert 0 < len(assistant["content"]) < 60


async def test_the_sdks_work_against_the_served_app_with_only_base_url_and_key(
    server: Server, http: httpx.AsyncClient
) -> None:
    """The README's example, on the default catalog: the local model and the local embedder, nothing else."""
    key = (await _user_with_key(http, "sdk@example.com"))["Authorization"].removeprefix("Bearer ")
    async with openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0) as oai:
        reply = await oai.chat.completions.create(model="local", messages=[{"role": "user", "content": "Hello"}])
        vectors = await oai.embeddings.create(model="local-embed", input=["Hello", "world"])
    async with (
        anthropic.AsyncAnthropic(base_url=server.url, api_key=key, max_retries=0) as claude,
        claude.messages.stream(model="local", max_tokens=200, messages=[{"role": "user", "content": "Hello"}]) as s,
    ):
        streamed = "".join([text async for text in s.text_stream])

    assert "Hello" in (reply.choices[0].message.content or "")
    assert [len(v.embedding) for v in vectors.data] == [256, 256]
    assert "Hello" in streamed

"""``/v1/batches`` with the official OpenAI SDK against a server on a loopback port, unchanged: upload the JSONL
file, create the batch, poll it, read the output and error files. On the embedded default (SQLite) and in memory
the server's own in-process worker runs it; the PostgreSQL case with separate ``switchboard worker`` processes is
in ``test_batches_workers_e2e.py``."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from interfaces.http.app import create_app
from tests.api.conftest import Api, assert_problem, make_settings
from tests.api.serving import serving
from tests.api.test_files_api import api_key

pytestmark = pytest.mark.api


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def chat_line(custom_id: str, text: str = "hello", model: str = "local") -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 20}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


async def wait_for_end(client: openai.AsyncOpenAI, batch_id: str, seconds: float = 20) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        batch = await client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        assert asyncio.get_running_loop().time() < deadline, f"batch still {batch.status}"
        await asyncio.sleep(0.05)


def read_jsonl(content: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in content.splitlines() if line.strip()]


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "memory":
        return {}
    return {"database_url": request.getfixturevalue("sqlite_url"), "file_storage_path": tmp_path / "files"}


@pytest.fixture
async def client(backend: dict[str, Any]) -> AsyncIterator[openai.AsyncOpenAI]:
    app = create_app(make_settings(**backend))
    async with serving(app) as url:
        key = await api_key(url, f"batches-{id(backend)}@example.com")
        yield openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=10)


async def test_a_chat_batch_runs_to_its_output_file(client: openai.AsyncOpenAI) -> None:
    lines = [chat_line(f"req-{i}", f"question {i}") for i in range(25)]
    file = await client.files.create(file=("in.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
    batch = await client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"run": "1"}
    )
    assert batch.status == "validating"
    assert batch.metadata == {"run": "1"}
    done = await wait_for_end(client, batch.id)
    assert done.status == "completed", done
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (25, 25, 0)
    assert done.in_progress_at
    assert done.finalizing_at
    assert done.completed_at
    assert done.error_file_id is None
    assert done.output_file_id is not None
    output = read_jsonl((await client.files.content(done.output_file_id)).content)
    assert sorted(item["custom_id"] for item in output) == sorted(line["custom_id"] for line in lines)
    for item in output:
        assert item["id"].startswith("batch_req_")
        assert item["error"] is None
        assert item["response"]["status_code"] == 200
        assert item["response"]["body"]["object"] == "chat.completion"
    listed = await client.batches.list(limit=10)
    assert [b.id for b in listed.data] == [batch.id]


async def test_a_bad_line_fails_the_batch_naming_it(client: openai.AsyncOpenAI) -> None:
    lines = jsonl([chat_line("a"), chat_line("a"), chat_line("c", model="no-such-model")]) + b"{not json\n"
    lines += orjson.dumps({**chat_line("e"), "url": "/v1/embeddings"}) + b"\n"
    file = await client.files.create(file=("in.jsonl", io.BytesIO(lines)), purpose="batch")
    batch = await client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    done = await wait_for_end(client, batch.id)
    assert done.status == "failed"
    assert done.failed_at
    assert done.errors is not None
    assert done.errors.data is not None
    found = {(e.code, e.line) for e in done.errors.data}
    assert found == {
        ("duplicate_custom_id", 2),
        ("model_not_found", 3),
        ("invalid_json_line", 4),
        ("mismatched_endpoint", 5),
    }
    assert done.output_file_id is None
    assert done.error_file_id is None


async def test_failed_lines_go_to_the_error_file(client: openai.AsyncOpenAI) -> None:
    too_long = chat_line("too-long")
    too_long["body"]["max_tokens"] = 10**7  # refused by the pipeline's check: validation fails the batch
    lines = [chat_line("ok")]
    file = await client.files.create(file=("in.jsonl", io.BytesIO(jsonl([*lines, too_long]))), purpose="batch")
    batch = await client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    done = await wait_for_end(client, batch.id)
    assert done.status == "failed"
    assert done.errors is not None
    assert done.errors.data is not None
    assert [(e.code, e.line) for e in done.errors.data] == [("invalid_request", 2)]


async def test_errors_in_openai_shape(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        await client.batches.retrieve("batch_0123")
    with pytest.raises(openai.NotFoundError):
        await client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
    file = await client.files.create(file=("in.jsonl", io.BytesIO(jsonl([chat_line("a")]))), purpose="batch")
    with pytest.raises(openai.BadRequestError) as refused:
        await client.batches.create(input_file_id=file.id, endpoint="/v1/images", completion_window="24h")  # type: ignore[arg-type]
    assert "endpoint" in refused.value.message
    with pytest.raises(openai.BadRequestError):
        await client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="1h")  # type: ignore[arg-type]


async def test_the_native_list_shows_progress_and_admins_see_everyone(api: Api) -> None:
    ada = await api.user("ada@example.com")
    bob = await api.user("bob@example.com")
    content = jsonl([chat_line("a"), chat_line("b")])
    upload = await api.http.post(
        "/v1/files", headers=ada, files={"file": ("in.jsonl", content)}, data={"purpose": "batch"}
    )
    body = {"input_file_id": upload.json()["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    created = (await api.http.post("/v1/batches", headers=ada, json=body)).json()
    for _ in range(200):
        page = (await api.http.get("/api/v1/batches", headers=ada)).json()
        if page["items"][0]["status"] == "completed":
            break
        await asyncio.sleep(0.02)
    [item] = page["items"]
    assert item["id"] == created["id"]
    assert item["kind"] == "openai"
    assert item["status"] == "completed"
    assert item["progress"] | {} == {
        "total": 2, "done": 2, "pending": 0, "running": 0, "succeeded": 2, "failed": 0, "cancelled": 0, "expired": 0,
        "percent": 100.0,
    }  # fmt: skip
    assert (await api.http.get("/api/v1/batches", headers=bob)).json()["items"] == []
    assert_problem(await api.http.get("/api/v1/batches?all=true", headers=bob), 403)
    admin = await api.admin()
    everyone = (await api.http.get("/api/v1/batches?all=true", headers=admin)).json()
    assert [b["id"] for b in everyone["items"]] == [created["id"]]
    assert_problem(await api.http.get("/api/v1/batches?limit=0", headers=ada), 422)


async def test_someone_elses_batch_is_a_404(api: Api) -> None:
    ada = await api.user("ada@example.com")
    bob = await api.user("bob@example.com")
    key = (await api.http.post("/api/v1/api-keys", headers=ada, json={"name": "batch"})).json()
    ada_key = {"Authorization": f"Bearer {key['key']}"}
    upload = await api.http.post(
        "/v1/files", headers=ada_key, files={"file": ("in.jsonl", jsonl([chat_line("a")]))}, data={"purpose": "batch"}
    )
    body = {"input_file_id": upload.json()["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    created = (await api.http.post("/v1/batches", headers=ada_key, json=body)).json()
    for attempt in (api.http.get(f"/v1/batches/{created['id']}", headers=bob),
                    api.http.post(f"/v1/batches/{created['id']}/cancel", headers=bob)):  # fmt: skip
        response = await attempt
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert (await api.http.get("/v1/batches", headers=bob)).json()["data"] == []
    bob_body = body | {"input_file_id": upload.json()["id"]}
    assert (await api.http.post("/v1/batches", headers=bob, json=bob_body)).status_code == 404  # not bob's file

"""``/v1/files`` with the official OpenAI SDK against a server on a loopback port, on every backend: in memory, the
embedded default (SQLite, contents in a directory) and PostgreSQL (contents in the database)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from interfaces.http.app import create_app
from tests.api.conftest import PASSWORD, make_settings
from tests.api.serving import serving
from tests.fakes.clock import FakeClock

pytestmark = pytest.mark.api
LINES = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'


async def api_key(url: str, email: str) -> str:
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})).is_success
        token = (await http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})).json()
        jwt = {"Authorization": f"Bearer {token['access_token']}"}
        return str((await http.post("/api/v1/api-keys", json={"name": "files"}, headers=jwt)).json()["key"])


class Server:
    def __init__(self, url: str, clock: FakeClock, tmp_path: Path) -> None:
        self.url, self.clock, self.tmp_path = url, clock, tmp_path
        self.count = 0

    async def client(self) -> openai.AsyncOpenAI:
        self.count += 1
        key = await api_key(self.url, f"files-{self.count}-{id(self)}@example.com")
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=10)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings of each backend; ``auto`` file storage: memory, a directory beside SQLite, PostgreSQL's table."""
    if request.param == "memory":
        return {}
    overrides: dict[str, Any] = {"database_url": request.getfixturevalue(f"{request.param}_url")}
    if request.param == "sqlite":
        overrides["file_storage_path"] = tmp_path / "files"
    return overrides


@pytest.fixture
async def server(backend: dict[str, Any], tmp_path: Path) -> AsyncIterator[Server]:
    app = create_app(make_settings(files_max_bytes=4096, **backend))
    clock = FakeClock()
    app.state.container.clock.override(clock)
    async with serving(app) as url:
        yield Server(url, clock, tmp_path)


async def test_upload_retrieve_list_content_delete(server: Server) -> None:
    client = await server.client()
    created = await client.files.create(file=("input.jsonl", LINES), purpose="batch")

    assert created.id.startswith("file-")
    assert (created.filename, created.purpose, created.bytes, created.object) == (
        "input.jsonl",
        "batch",
        len(LINES),
        "file",
    )
    assert (await client.files.retrieve(created.id)).model_dump() == created.model_dump()
    assert (await client.files.content(created.id)).content == LINES
    listed = [f.id async for f in client.files.list()]
    assert listed == [created.id]

    deleted = await client.files.delete(created.id)
    assert (deleted.id, deleted.deleted) == (created.id, True)
    with pytest.raises(openai.NotFoundError):
        await client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        await client.files.content(created.id)


async def test_a_binary_file_with_nul_bytes_is_data_and_round_trips(server: Server) -> None:
    """Only the form's text fields are text: a PDF's bytes hold NULs and must upload (the NUL guard skips them)."""
    client = await server.client()
    data = b"%PDF-1.4\n\x00\x01\xff\\u0000 stream\x00\n"
    created = await client.files.create(file=("scan.pdf", data), purpose="assistants")
    assert (await client.files.content(created.id)).content == data


async def test_the_sdk_pages_through_the_list_in_either_order(server: Server) -> None:
    client = await server.client()
    ids = []
    for i in range(5):
        server.clock.advance(seconds=1)
        ids.append((await client.files.create(file=(f"f{i}.jsonl", LINES), purpose="user_data")).id)
    await client.files.create(file=("other.jsonl", LINES), purpose="batch")

    newest_first = [f.id async for f in client.files.list(limit=2, purpose="user_data")]
    oldest_first = [f.id async for f in client.files.list(limit=2, purpose="user_data", order="asc")]
    page = await client.files.list(limit=2, purpose="user_data")

    assert newest_first == list(reversed(ids))
    assert oldest_first == ids
    assert page.has_more is True
    assert [f.id for f in page.data] == [ids[4], ids[3]]


async def test_someone_elses_file_is_a_404(server: Server) -> None:
    ada, bob = await server.client(), await server.client()
    file = await ada.files.create(file=("a.jsonl", LINES), purpose="batch")

    for call in (bob.files.retrieve, bob.files.content, bob.files.delete):
        with pytest.raises(openai.NotFoundError):
            await call(file.id)
    assert [f.id async for f in bob.files.list()] == []
    assert (await ada.files.retrieve(file.id)).id == file.id


async def test_expiry_is_honoured(server: Server) -> None:
    client = await server.client()
    file = await client.files.create(
        file=("a.jsonl", LINES), purpose="batch", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert file.expires_at == file.created_at + 3600

    server.clock.advance(seconds=3601)
    with pytest.raises(openai.NotFoundError):
        await client.files.retrieve(file.id)
    assert [f.id async for f in client.files.list()] == []


async def test_a_file_above_the_limit_is_a_413_in_openais_shape(server: Server) -> None:
    client = await server.client()
    with pytest.raises(openai.APIStatusError) as caught:
        await client.files.create(file=("big.jsonl", b"x" * 5000), purpose="batch")

    assert caught.value.status_code == 413
    body: Any = caught.value.body
    assert body["type"] == "invalid_request_error"
    assert body["code"] == "file_too_large"
    assert "4096 bytes" in body["message"]


async def test_a_huge_body_is_refused_before_it_is_read(server: Server) -> None:
    key = await api_key(server.url, f"huge-{id(server)}@example.com")
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            "/v1/files",
            headers={"authorization": f"Bearer {key}"},
            files={"file": ("big.jsonl", b"x" * 200_000)},
            data={"purpose": "batch"},
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"


@pytest.mark.parametrize(
    ("data", "files", "message"),
    [
        ({"purpose": "fine-tune"}, {"file": ("a.jsonl", LINES)}, "purpose: 'fine-tune' is not one of"),
        ({"purpose": "batch\x00"}, {"file": ("a.jsonl", LINES)}, "purpose must not contain a NUL character"),
        ({}, {"file": ("a.jsonl", LINES)}, "purpose: a form field is required"),
        ({"purpose": "batch"}, None, "file: a multipart/form-data part named 'file' is required"),
        (
            {"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "60"},
            {"file": ("a.jsonl", LINES)},
            "expires_after[seconds]: must be between 3600",
        ),
        (
            {"purpose": "batch", "expires_after[seconds]": "soon"},
            {"file": ("a.jsonl", LINES)},
            "expires_after[seconds]: must be an integer",
        ),
    ],
)
async def test_bad_uploads_are_400s_naming_the_field(
    server: Server, data: dict[str, str], files: Any, message: str
) -> None:
    key = await api_key(server.url, f"bad-{id(server)}-{len(data)}-{message[:5]}@example.com")
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            "/v1/files", headers={"authorization": f"Bearer {key}"}, data=data, files=files or {"x": ("", b"")}
        )
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit: must be between 1 and 10000"),
        ("limit=ten", "limit: must be an integer"),
        ("order=sideways", "order: must be 'asc' or 'desc'"),
        ("purpose=nope", "purpose: 'nope' is not a file purpose"),
    ],
)
async def test_bad_list_queries_are_400s(server: Server, query: str, message: str) -> None:
    key = await api_key(server.url, f"list-{id(server)}-{query[:6]}@example.com")
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get(f"/v1/files?{query}", headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]


async def test_malformed_ids_are_404s_and_no_credential_is_401(server: Server) -> None:
    client = await server.client()
    for bad in ("nope", "file-xyz", "file-" + "0" * 32):
        with pytest.raises(openai.NotFoundError):
            await client.files.retrieve(bad)
    anonymous = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="sk-sb-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await anonymous.files.list()

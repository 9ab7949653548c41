"""File search on the embedded default: SQLite, its vector index and ``local-embed``, through the official SDK and
the native API; what a stored response and a stored answer keep of their search survives the database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from interfaces.http.app import create_app
from tests.api.conftest import PASSWORD, make_settings
from tests.api.serving import serving
from tests.conftest import DatabaseFactory

pytestmark = pytest.mark.api

HANDBOOK = "Employees book economy class for flights under six hours. The approval code is TRV-2024.\n"


@pytest.fixture
async def server(sqlite_database_factory: DatabaseFactory) -> AsyncIterator[str]:
    async with (
        sqlite_database_factory(migrate=True) as url,
        serving(create_app(make_settings(database_url=url))) as base,
    ):
        yield base


async def test_file_search_answers_are_kept_with_their_citations(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as http:
        await http.post("/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD})
        form = {"username": "ada@example.com", "password": PASSWORD}
        http.headers["Authorization"] = (
            "Bearer " + (await http.post("/api/v1/auth/token", data=form)).json()["access_token"]
        )
        key = (await http.post("/api/v1/api-keys", json={"name": "sdk"})).json()["key"]
        async with openai.AsyncOpenAI(base_url=f"{server}/v1", api_key=key, max_retries=0) as oai:
            file_id = (await oai.files.create(file=("handbook.txt", HANDBOOK.encode()), purpose="assistants")).id
            store = await oai.vector_stores.create(name="policies")
            done = await oai.vector_stores.files.create_and_poll(
                file_id=file_id, vector_store_id=store.id, poll_interval_ms=20
            )
            assert done.status == "completed"

            tool = {"type": "file_search", "vector_store_ids": [store.id]}
            response = await oai.responses.create(
                model="local", input="approval code", tools=[tool], include=["file_search_call.results"]
            )
            stored = await oai.responses.retrieve(response.id)
            assert stored.model_dump()["output"] == response.model_dump()["output"]
            call = stored.output[0]
            assert call.type == "file_search_call"
            assert call.results is not None
            assert call.results[0].file_id == file_id

        conversation = (await http.post("/api/v1/conversations", json={"vector_store_ids": [store.id]})).json()
        path = f"/api/v1/conversations/{conversation['id']}"
        answer = (await http.post(f"{path}/messages", json={"content": "approval code"})).json()
        [citation] = answer["assistant_message"]["citations"]
        assert (citation["file_id"], citation["filename"], citation["position"]) == (file_id, "handbook.txt", 0)
        history = (await http.get(path)).json()
        assert history["vector_store_ids"] == [store.id]
        assert history["messages"][1]["citations"] == [citation]

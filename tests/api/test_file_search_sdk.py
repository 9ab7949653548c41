"""``file_search`` on any model, through the official SDKs against Switchboard on a loopback port: the Responses
API's tool (whole, streamed, stored, on the local model and on OpenAI- and Anthropic-backed fake upstreams), and the
same tool object as Switchboard's extension on chat completions and on Anthropic's messages. The fake upstream
records what the model was sent: the passages must be there."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import httpx
import openai
import pytest
from openai.types.responses import (
    ResponseFileSearchCallCompletedEvent,
    ResponseFileSearchCallInProgressEvent,
    ResponseFileSearchCallSearchingEvent,
    ResponseFileSearchToolCall,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputTextAnnotationAddedEvent,
)
from openai.types.responses.response_output_text import AnnotationFileCitation

from tests.api.conftest import PASSWORD
from tests.api.test_compat_sdk import CHAT_MODELS, Switchboard, ant, oai, switchboard, upstream  # noqa: F401
from tests.fakes import upstream as fake
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.api

HANDBOOK = (
    "# Travel policy\n\nEmployees book economy class for flights under six hours. The approval code is TRV-2024.\n"
)
MENU = "# Canteen\n\nSoup of the day: lentils. The canteen opens at noon on weekdays.\n"
QUESTION = "What is the approval code for travel?"


@pytest.fixture(scope="module")
async def store(oai: openai.AsyncOpenAI) -> dict[str, str]:  # noqa: F811
    """A store with two files, ingested by the server's job worker."""
    handbook = (await oai.files.create(file=("handbook.md", HANDBOOK.encode()), purpose="assistants")).id
    menu = (await oai.files.create(file=("menu.md", MENU.encode()), purpose="assistants")).id
    created = await oai.vector_stores.create(name="policies")
    for file_id in (handbook, menu):
        done = await oai.vector_stores.files.create_and_poll(
            file_id=file_id, vector_store_id=created.id, poll_interval_ms=20
        )
        assert done.status == "completed"
    return {"id": created.id, "handbook": handbook, "menu": menu}


def tool(store: dict[str, str], **settings: Any) -> Any:
    return {"type": "file_search", "vector_store_ids": [store["id"]], **settings}


def sent_text(served_by: FakeUpstream) -> str:
    """Everything the model was sent, as one text (OpenAI's messages, or Anthropic's system and messages)."""
    return json.dumps(served_by.last_request.json)


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_responses_file_search_on_every_provider(
    oai: openai.AsyncOpenAI,  # noqa: F811
    upstream: FakeUpstream,  # noqa: F811
    store: dict[str, str],
    model: str,
) -> None:
    upstream.push(fake.ok("The approval code is TRV-2024 [1]."))
    response = await oai.responses.create(
        model=model, input=QUESTION, tools=[tool(store, max_num_results=2)], include=["file_search_call.results"]
    )

    call, message = response.output
    assert isinstance(call, ResponseFileSearchToolCall)
    assert (call.status, call.queries) == ("completed", [QUESTION])
    assert call.results is not None
    assert call.results[0].file_id == store["handbook"]
    assert call.results[0].filename == "handbook.md"
    assert "TRV-2024" in (call.results[0].text or "")
    assert isinstance(message, ResponseOutputMessage)
    [part] = message.content
    assert part.type == "output_text"
    citation = part.annotations[0]
    assert isinstance(citation, AnnotationFileCitation)
    assert (citation.file_id, citation.filename) == (store["handbook"], "handbook.md")
    if model == "local":  # the local model cites nothing itself: each file it was given is cited at the end
        assert citation.index == len(part.text)
    else:  # the model's "[1]" is the citation, where it stands
        assert part.text == "The approval code is TRV-2024 [1]."
        assert citation.index == part.text.index("[1]")
        assert "TRV-2024" in sent_text(upstream)  # the passage reached the model
        assert "[1] handbook.md" in sent_text(upstream)
    stored = await oai.responses.retrieve(response.id)
    assert [item.type for item in stored.output] == ["file_search_call", "message"]
    assert stored.output[1].content[0].annotations == part.annotations  # type: ignore[union-attr]
    assert stored.tools[0].type == "file_search"


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_responses_file_search_streamed(
    oai: openai.AsyncOpenAI,  # noqa: F811
    upstream: FakeUpstream,  # noqa: F811
    store: dict[str, str],
    model: str,
) -> None:
    upstream.push(fake.ok("Economy class [1], and soup [2]."))
    events = []
    async with oai.responses.stream(model=model, input="flights and soup", tools=[tool(store)]) as stream:
        async for event in stream:
            events.append(event)
        final = await stream.get_final_response()

    kinds = [e.type for e in events]
    assert kinds[:7] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_item.done",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    added, in_progress, searching, completed, done = events[2:7]
    assert isinstance(added, ResponseOutputItemAddedEvent)
    assert isinstance(in_progress, ResponseFileSearchCallInProgressEvent)
    assert isinstance(searching, ResponseFileSearchCallSearchingEvent)
    assert isinstance(completed, ResponseFileSearchCallCompletedEvent)
    assert isinstance(done, ResponseOutputItemDoneEvent)
    assert (added.item.type, added.item.status) == ("file_search_call", "in_progress")
    assert (done.item.type, done.item.status) == ("file_search_call", "completed")
    assert done.item.results is None  # not asked for with include
    annotations = [e for e in events if isinstance(e, ResponseOutputTextAnnotationAddedEvent)]
    assert annotations
    assert kinds.index("response.output_text.annotation.added") < kinds.index("response.output_text.done")
    [message] = [item for item in final.output if item.type == "message"]
    cited = message.content[0].annotations  # type: ignore[union-attr]
    assert [a.annotation.model_dump() for a in annotations if a.annotation] == [c.model_dump() for c in cited]
    assert [item.type for item in final.output] == ["file_search_call", "message"]
    if model != "local":
        assert [c.filename for c in cited] == ["handbook.md", "menu.md"]  # type: ignore[union-attr]
        assert "lentils" in sent_text(upstream)
    replayed = await oai.responses.retrieve(final.id)
    assert replayed.output[1].content[0].annotations == cited  # type: ignore[union-attr]


async def test_file_search_embeddings_are_metered(
    oai: openai.AsyncOpenAI,  # noqa: F811
    switchboard: Switchboard,  # noqa: F811
    store: dict[str, str],
) -> None:
    before = await _embedding_calls(switchboard)
    await oai.responses.create(model="local", input=QUESTION, tools=[tool(store)])
    assert await _embedding_calls(switchboard) == before + 1


async def _embedding_calls(server: Switchboard) -> int:
    await server.app.state.container.usage_recorder().flush()
    async with httpx.AsyncClient(base_url=server.url) as http:
        form = {"username": "sdk@example.com", "password": PASSWORD}  # the key has no usage scope; its owner has
        token = (await http.post("/api/v1/auth/token", data=form)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        answer = await http.get("/api/v1/usage", params={"group_by": "model"}, headers=headers)
    assert answer.status_code == 200, answer.text
    return sum(g["requests"] for g in answer.json()["groups"] if g["group"] == "local-embed")


async def test_someone_elses_store_is_not_found(oai: openai.AsyncOpenAI, store: dict[str, str]) -> None:  # noqa: F811
    missing = {"type": "file_search", "vector_store_ids": ["vs_" + "0" * 32]}
    with pytest.raises(openai.NotFoundError):
        await oai.responses.create(model="local", input=QUESTION, tools=[missing])
    with pytest.raises(openai.BadRequestError):
        await oai.responses.create(model="local", input=QUESTION, tools=[tool(store), tool(store)])


# ---- the extension: the same tool object on chat completions and on Anthropic's messages -------------------------


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_chat_completions_with_file_search(
    oai: openai.AsyncOpenAI,  # noqa: F811
    upstream: FakeUpstream,  # noqa: F811
    store: dict[str, str],
    model: str,
) -> None:
    upstream.push(fake.ok("Use code TRV-2024 [1]."))
    nested: Any = {"type": "file_search", "file_search": {"vector_store_ids": [store["id"]], "max_num_results": 1}}
    completion = await oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": QUESTION}], tools=[nested]
    )

    found = completion.to_dict()["file_search"]  # type: ignore[typeddict-item]
    assert found["queries"] == [QUESTION]
    assert [r["filename"] for r in found["results"]] == ["handbook.md"]
    [citation] = found["citations"]
    assert (citation["type"], citation["file_id"], citation["position"]) == ("file_citation", store["handbook"], 0)
    text = completion.choices[0].message.content or ""
    assert citation["index"] == (len(text) if model == "local" else text.index("[1]"))
    if model != "local":
        assert "TRV-2024" in sent_text(upstream)
        assert "tools" not in upstream.last_request.json  # the tool is Switchboard's, not the provider's


@pytest.mark.parametrize("model", ["gpt", "claude"])
async def test_chat_completions_streamed_with_file_search(
    oai: openai.AsyncOpenAI,  # noqa: F811
    upstream: FakeUpstream,  # noqa: F811
    store: dict[str, str],
    model: str,
) -> None:
    upstream.push(fake.ok("Soup [1]."))
    stream = await oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "soup of the day"}], tools=[tool(store)], stream=True
    )
    chunks = [chunk async for chunk in stream]

    [last] = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    found = last.to_dict()["file_search"]  # type: ignore[typeddict-item]
    assert found["citations"][0]["filename"] == "menu.md"
    assert found["citations"][0]["index"] == len("Soup ")
    assert all("file_search" not in c.to_dict() for c in chunks if c is not last)
    assert "lentils" in sent_text(upstream)


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_anthropic_messages_with_file_search(
    ant: anthropic.AsyncAnthropic,  # noqa: F811
    upstream: FakeUpstream,  # noqa: F811
    store: dict[str, str],
    model: str,
) -> None:
    upstream.push(fake.ok("Economy [1]."))
    message = await ant.messages.create(
        model=model,
        max_tokens=200,
        messages=[{"role": "user", "content": "which class for flights"}],
        tools=[tool(store)],
    )

    found = message.to_dict()["file_search"]  # type: ignore[typeddict-item]
    assert found["citations"][0]["file_id"] == store["handbook"]
    if model != "local":
        assert "economy class" in sent_text(upstream)

    upstream.push(fake.ok("Economy [1]."))
    events = [
        event
        async for event in await ant.messages.create(
            model=model,
            max_tokens=200,
            messages=[{"role": "user", "content": "which class for flights"}],
            tools=[tool(store)],
            stream=True,
        )
    ]
    [delta] = [e for e in events if e.type == "message_delta"]
    assert delta.to_dict()["file_search"]["citations"] == found["citations"]  # type: ignore[typeddict-item]


# ---- native conversations that name vector stores ----------------------------------------------------------------


@asynccontextmanager
async def _native(server: Switchboard, email: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the native API signed in as a new user (``email``), or as the SDK's user when it exists."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        token = (await http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})).json()
        http.headers["Authorization"] = f"Bearer {token['access_token']}"
        yield http


async def test_a_conversation_answers_with_citations(
    switchboard: Switchboard,  # noqa: F811
    upstream: FakeUpstream,  # noqa: F811
    store: dict[str, str],
) -> None:
    async with _native(switchboard, "sdk@example.com") as http:
        created = await http.post("/api/v1/conversations", json={"model": "gpt", "vector_store_ids": [store["id"]]})
        assert created.status_code == 201, created.text
        assert created.json()["vector_store_ids"] == [store["id"]]
        path = f"/api/v1/conversations/{created.json()['id']}"

        upstream.push(fake.ok("The code is TRV-2024 [1]."))
        answered = await http.post(f"{path}/messages", json={"content": QUESTION})
        assert answered.status_code == 201, answered.text
        [citation, *_] = answered.json()["assistant_message"]["citations"]
        assert citation["file_id"] == store["handbook"]
        text = answered.json()["assistant_message"]["content"]
        assert (citation["filename"], citation["position"], citation["index"]) == ("handbook.md", 0, text.index("[1]"))
        assert 0 < citation["score"] <= 1
        assert "TRV-2024" in sent_text(upstream)
        assert answered.json()["user_message"]["citations"] == []

        upstream.push(fake.ok("Lentils [1]."))
        async with http.stream("POST", f"{path}/messages", json={"content": "soup", "stream": True}) as streamed:
            lines = [line async for line in streamed.aiter_lines()]
        done = json.loads(lines[lines.index("event: done") + 1].removeprefix("data: "))
        assert done["assistant_message"]["citations"][0]["filename"] == "menu.md"

        history = (await http.get(path)).json()["messages"]
        assert [m["citations"] for m in history if m["role"] == "assistant"] == [
            answered.json()["assistant_message"]["citations"],
            done["assistant_message"]["citations"],
        ]

        cleared = await http.patch(path, json={"vector_store_ids": None})
        assert cleared.json()["vector_store_ids"] == []
        upstream.push(fake.ok("No files."))
        plain = await http.post(f"{path}/messages", json={"content": QUESTION})
        assert plain.json()["assistant_message"]["citations"] == []
        assert "handbook.md" not in sent_text(upstream)  # no passages any more


async def test_a_conversation_never_names_another_tenants_store(
    switchboard: Switchboard,  # noqa: F811
    store: dict[str, str],
) -> None:
    async with _native(switchboard, "mallory@example.com") as http:
        refused = await http.post("/api/v1/conversations", json={"vector_store_ids": [store["id"]]})
        assert refused.status_code == 404
        own = (await http.post("/api/v1/conversations", json={})).json()
        patched = await http.patch(f"/api/v1/conversations/{own['id']}", json={"vector_store_ids": [store["id"]]})
        assert patched.status_code == 404
        assert (await http.get(f"/api/v1/conversations/{own['id']}")).json()["vector_store_ids"] == []

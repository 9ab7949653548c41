"""``file_search`` for any model: citations from an answer's markers, where the passages go in the prompt, and the
retrieval use case on the in-memory index: two tenants with identical text, the query's embedding metered and
limited like any model call."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from application.vectors.file_search import FileSearchRetrieval, FileSearchTool
from domain.files.model import public_file_id
from domain.llm.model import ChatMessage, ChatRole, CompletionRequest
from domain.shared.errors import RateLimited, RuleViolation
from domain.usage.model import Limits
from domain.vectors.citations import INSTRUCTIONS, NOTHING_FOUND, FileSearch, Source, cite, with_context
from domain.vectors.errors import VectorStoreNotFound
from tests.unit.test_vector_stores import REPORT, Rig, rig  # noqa: F401 (the fixture)

pytestmark = pytest.mark.unit

FIRST, SECOND = uuid.uuid4(), uuid.uuid4()


def source(file_id: uuid.UUID, name: str, position: int, score: float) -> Source:
    return Source(store_id=uuid.uuid4(), file_id=file_id, filename=name, position=position, score=score, text="t")


SOURCES = (source(FIRST, "a.md", 3, 0.9), source(FIRST, "a.md", 4, 0.8), source(SECOND, "b.md", 0, 0.5))


def test_each_marker_is_a_citation_where_it_stands() -> None:
    text = "Alpha [2]. Beta [3] and [9], [x]."

    cited = cite(text, SOURCES)

    assert [(c.filename, c.position, c.index) for c in cited] == [("a.md", 4, 6), ("b.md", 0, 16)]
    assert cited[1].score == 0.5


def test_an_answer_citing_nothing_cites_each_file_once_at_its_end() -> None:
    cited = cite("No markers here.", SOURCES)

    assert [(c.file_id, c.position, c.index) for c in cited] == [(FIRST, 3, 16), (SECOND, 0, 16)]
    assert cite("Anything", ()) == ()


def test_the_passages_go_just_before_the_newest_user_message() -> None:
    messages = (
        ChatMessage(ChatRole.SYSTEM, "Be brief."),
        ChatMessage(ChatRole.USER, "first"),
        ChatMessage(ChatRole.ASSISTANT, "ok"),
        ChatMessage(ChatRole.USER, "second"),
    )
    search = FileSearch(queries=("second",), sources=SOURCES[:1])

    placed = with_context(messages, search)

    assert [m.content for m in placed[:3]] == ["Be brief.", "first", "ok"]
    assert placed[3].role is ChatRole.SYSTEM
    assert placed[3].content.startswith(INSTRUCTIONS)
    assert "[1] a.md\nt" in placed[3].content
    assert placed[4].content == "second"
    assert with_context(messages, FileSearch(queries=("x",)))[3].content == NOTHING_FOUND


async def test_retrieval_never_uses_another_tenants_store_or_chunk(rig: Rig) -> None:  # noqa: F811
    ada, bob = await rig.env.principal("ada@example.com"), await rig.env.principal("bob@example.com")
    ada_store = await rig.store(ada, await rig.upload(ada, "same.txt", REPORT.encode()))
    bob_file = await rig.upload(bob, "same.txt", REPORT.encode())
    bob_store = await rig.store(bob, bob_file)
    await rig.run_jobs()
    retrieval = FileSearchRetrieval(search=rig.search())
    request = CompletionRequest(model="local", messages=(ChatMessage(ChatRole.USER, "project Bluebird code"),))

    grounded = await retrieval.ground(request, FileSearchTool(store_ids=(bob_store,)), principal=bob)

    assert grounded.search.sources
    assert {(s.store_id, public_file_id(s.file_id)) for s in grounded.search.sources} == {(bob_store, bob_file)}
    assert grounded.request.messages[-1] == request.messages[-1]
    assert "ZX-81" in grounded.request.messages[0].content
    with pytest.raises(VectorStoreNotFound):
        await retrieval.ground(request, FileSearchTool(store_ids=(bob_store, ada_store)), principal=bob)


async def test_the_query_embedding_is_a_metered_and_limited_model_call(rig: Rig) -> None:  # noqa: F811
    ada = await rig.env.principal("ada@example.com")
    store = await rig.store(ada, await rig.upload(ada, "r.txt", REPORT.encode()))
    await rig.run_jobs()
    retrieval = FileSearchRetrieval(search=rig.search())
    request = CompletionRequest(model="local", messages=(ChatMessage(ChatRole.USER, "revenue"),))
    before = len(rig.recorder.records)

    await retrieval.ground(request, FileSearchTool(store_ids=(store,)), principal=ada, request_id="req-1")

    [record] = rig.recorder.records[before:]
    assert (record.model, record.user_id, record.output_tokens) == ("local-embed", ada.user_id, 0)
    assert record.input_tokens > 0
    limited = replace(ada, user_limits=Limits(tokens_per_minute=1))
    await retrieval.ground(request, FileSearchTool(store_ids=(store,)), principal=limited)  # the minute's one pass
    with pytest.raises(RateLimited):
        await retrieval.ground(request, FileSearchTool(store_ids=(store,)), principal=limited)
    with pytest.raises(RuleViolation):  # nothing to search with
        await retrieval.ground(
            CompletionRequest(model="local", messages=(ChatMessage(ChatRole.SYSTEM, "hi"),)),
            FileSearchTool(store_ids=(store,)),
            principal=ada,
        )

"""Stateless completions, streams and embeddings for the compatible endpoints, on the local model and embedder."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from application.chat.create_conversation import CreateConversation, CreateConversationCommand
from application.compat.create_completion import CompletionCommand, CreateCompletion
from application.compat.create_embeddings import CreateEmbeddings, EmbeddingsCommand
from application.compat.stream_completion import StreamCompletion
from application.llm.model_call import ModelCall
from application.models.get_model import GetModel
from application.usage.context import CachePolicy
from domain.auth.model import Principal, Role, Scope
from domain.llm.errors import ModelNotFound
from domain.llm.model import (
    ChatMessage,
    ChatRole,
    CompletionRequest,
    EmbeddingRequest,
    FinishReason,
    ModelKind,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
    check_completion_request,
)
from domain.shared.errors import Forbidden, RuleViolation, UpstreamBadResponse, UpstreamError
from infrastructure.llm.catalog import StaticModelCatalog
from infrastructure.llm.local import LocalProvider
from infrastructure.llm.local_embeddings import LocalEmbeddingProvider
from infrastructure.llm.router import ModelRouter
from interfaces.http.compat.anthropic_schemas import CreateMessageRequest
from interfaces.http.compat.json_text import compact_json
from interfaces.http.idempotency import fingerprint
from tests.fakes.llm import OneModel, ScriptedProvider
from tests.unit.conftest import Env, local_spec

pytestmark = pytest.mark.unit

HELLO = CompletionRequest(model="local", messages=(ChatMessage(ChatRole.USER, "hello there"),))
EMBED = local_spec("embed", kind=ModelKind.EMBEDDING, dimensions=32)


@pytest.fixture
def model_call(env: Env) -> ModelCall:
    catalog = StaticModelCatalog([*env.catalog.list(), EMBED], default_model="local")
    router = ModelRouter(
        catalog,
        {s.name: LocalProvider(s) for s in env.catalog.list()},
        embedders={"embed": LocalEmbeddingProvider(EMBED)},
    )
    env.catalog = catalog
    return ModelCall(models=router, catalog=catalog)


def scripted(env: Env, provider: ScriptedProvider) -> StreamCompletion:
    return StreamCompletion(model_call=ModelCall(models=OneModel(provider), catalog=env.catalog))


def command(principal: Principal, request: CompletionRequest = HELLO, **kwargs: object) -> CompletionCommand:
    return CompletionCommand(principal=principal, request=request, **kwargs)  # type: ignore[arg-type]


async def test_a_completion_needs_the_chat_scope_and_a_chat_model(env: Env, model_call: ModelCall) -> None:
    ada = await env.principal("ada@example.com")
    use_case = CreateCompletion(model_call=model_call)

    answer = await use_case.execute(command(ada))

    assert "hello there" in answer.completion.content
    with pytest.raises(Forbidden):
        await use_case.execute(command(replace(ada, scopes=frozenset({Scope.MODELS}))))
    with pytest.raises(ModelNotFound, match="'gpt-17' does not exist"):
        await use_case.execute(command(ada, replace(HELLO, model="gpt-17")))
    with pytest.raises(ModelNotFound, match="embedding model, not a chat model"):
        await use_case.execute(command(ada, replace(HELLO, model="embed")))
    with pytest.raises(RuleViolation, match="temperature"):
        await use_case.execute(command(ada, replace(HELLO, temperature=2.5)))


async def test_the_model_call_gets_who_asked_the_request_id_and_the_cache_choice(env: Env) -> None:
    seen = []

    class Spy(ModelCall):
        async def complete(self, request, context):  # type: ignore[no-untyped-def]
            seen.append(context)
            return await super().complete(request, context)

    ada = await env.principal("ada@example.com")
    use_case = CreateCompletion(model_call=Spy(models=env.llm, catalog=env.catalog))
    await use_case.execute(command(ada, request_id="req-7", cache=CachePolicy.BYPASS))

    [context] = seen
    assert (context.principal, context.request_id, context.cache, context.conversation_id) == (
        ada,
        "req-7",
        CachePolicy.BYPASS,
        None,
    )


async def test_a_stream_gives_its_first_event_then_the_rest_and_closes_the_upstream(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    provider = ScriptedProvider(["a", "b", "c"])
    stream = await scripted(env, provider).open(command(ada))

    events = [event async for event in stream]
    await stream.aclose()

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["a", "b", "c"]
    assert isinstance(events[-1], StreamEnd)
    assert provider.closed


async def test_a_stream_failing_before_its_first_event_raises_from_open(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    failing = scripted(env, ScriptedProvider(["a"], fail_after=0))

    with pytest.raises(UpstreamError, match="upstream broke"):
        await failing.open(command(ada))

    class Silent(ScriptedProvider):
        async def stream(self, request):  # type: ignore[no-untyped-def]
            return
            yield

    with pytest.raises(UpstreamBadResponse, match=r"without any event"):
        await scripted(env, Silent([])).open(command(ada))


async def test_a_stream_closed_early_closes_the_upstream(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    provider = ScriptedProvider(["a", "b", "c"])
    stream = await scripted(env, provider).open(command(ada))

    assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()

    assert provider.closed


async def test_embeddings_need_an_embedding_model(env: Env, model_call: ModelCall) -> None:
    ada = await env.principal("ada@example.com")
    use_case = CreateEmbeddings(model_call=model_call)

    result = await use_case.execute(
        EmbeddingsCommand(principal=ada, request=EmbeddingRequest(model="embed", inputs=("a", "b")))
    )

    assert [len(v) for v in result.vectors] == [32, 32]
    assert result.served_by.model == "embed"
    with pytest.raises(ModelNotFound, match="chat model, not an embedding model"):
        await use_case.execute(EmbeddingsCommand(principal=ada, request=EmbeddingRequest(model="local", inputs=("a",))))
    with pytest.raises(RuleViolation, match="at least one"):
        await use_case.execute(EmbeddingsCommand(principal=ada, request=EmbeddingRequest(model="embed", inputs=())))
    viewer = Principal(user_id=ada.user_id, role=Role.MEMBER, scopes=frozenset({Scope.MODELS}))
    with pytest.raises(Forbidden):
        await use_case.execute(
            EmbeddingsCommand(principal=viewer, request=EmbeddingRequest(model="embed", inputs=("a",)))
        )


async def test_get_model_finds_one_or_says_not_found(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    assert (await GetModel(catalog=env.catalog).execute(ada, "local")).name == "local"
    with pytest.raises(ModelNotFound):
        await GetModel(catalog=env.catalog).execute(ada, "nope")


async def test_a_conversation_cannot_use_an_embedding_model(env: Env, model_call: ModelCall) -> None:
    ada = await env.principal("ada@example.com")
    use_case = CreateConversation(uow=env.uow, catalog=env.catalog, clock=env.clock, max_conversations_per_user=5)
    with pytest.raises(RuleViolation, match="needs a chat model"):
        await use_case.execute(CreateConversationCommand(principal=ada, model="embed"))


WEATHER = ToolDefinition(name="get_weather")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"messages": ()}, "at least one message"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"top_p": 1.5}, "top_p"),
        ({"tools": (ToolDefinition(name="has space"),)}, "name 'has space'"),
        ({"tools": (WEATHER, WEATHER)}, "same name"),
        ({"tools": (WEATHER,), "tool_choice": ToolChoice(mode=ToolChoiceMode.REQUIRED, name="other")}, "'other'"),
        ({"messages": (ChatMessage(ChatRole.TOOL, "sunny"),)}, "id of the call"),
        (
            {"messages": (ChatMessage(ChatRole.USER, "x", tool_calls=(ToolCall(id="1", name="a", arguments="{}"),)),)},
            "only assistant messages",
        ),
    ],
)
def test_completion_rules(change: dict[str, object], says: str) -> None:
    with pytest.raises(RuleViolation, match=says):
        check_completion_request(replace(HELLO, **change))  # type: ignore[arg-type]


async def test_the_local_model_calls_a_tool_only_when_asked_and_never_after_a_result() -> None:
    provider = LocalProvider(local_spec())
    offered = replace(HELLO, tools=(WEATHER,))
    asking = replace(offered, messages=(ChatMessage(ChatRole.USER, "CALL_TOOL now"),))

    plain = await provider.complete(offered)
    asked = await provider.complete(asking)
    call = asked.tool_calls[0]
    result = (
        ChatMessage(ChatRole.ASSISTANT, "", tool_calls=(call,)),
        ChatMessage(ChatRole.TOOL, "rainy", tool_call_id=call.id),
    )
    after = await provider.complete(replace(asking, messages=(*asking.messages, *result)))

    assert (plain.finish_reason, plain.tool_calls) == (FinishReason.STOP, ())
    assert asked.finish_reason is FinishReason.TOOL_CALLS
    assert (call.name, call.arguments) == ("get_weather", "{}")
    assert after.tool_calls == ()
    assert "rainy" in after.content


@pytest.mark.parametrize("value", [{"n": 2**70}, {"s": "\udae2"}, {"x": [1.5, None, True, "é"]}])
def test_client_json_with_big_integers_or_lone_surrogates_is_passed_on_not_a_500(value: dict[str, object]) -> None:
    """Found by fuzzing /v1/messages: a tool_use input orjson cannot write was an unexpected error."""
    text = compact_json(value)
    assert json.loads(text) == value
    request = CreateMessageRequest.model_validate(
        {
            "model": "local",
            "max_tokens": 5,
            "messages": [
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": value}]}
            ],
        }
    )
    [message] = request.to_domain().messages
    assert json.loads(message.tool_calls[0].arguments) == value


def test_an_idempotency_fingerprint_takes_any_body_that_parsed() -> None:
    """Found by fuzzing /v1/messages with an Idempotency-Key: a big integer in a tool input was a 500."""
    body = {
        "model": "local",
        "max_tokens": 5,
        "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}],
    }
    big = CreateMessageRequest.model_validate(
        {**body, "messages": [{**body["messages"][0], "content": [{"type": "text", "text": "\udae2"}]}]}  # type: ignore[dict-item]
    )
    assert fingerprint("/v1/messages", big) == fingerprint("/v1/messages", big)
    huge = CreateMessageRequest.model_validate({**body, "max_tokens": 2**70})
    assert fingerprint("/v1/messages", huge) != fingerprint("/v1/messages", big)

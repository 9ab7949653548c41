from __future__ import annotations

import pytest

from application.chat.create_conversation import CreateConversation, CreateConversationCommand
from application.chat.exchange import PostMessageCommand
from application.chat.get_conversation import GetConversation, GetConversationCommand
from application.chat.stream_message import StreamMessage, StreamOutcome
from application.llm.model_call import ModelCall
from domain.auth.model import Principal
from domain.chat.model import MessageStatus
from domain.llm.model import FinishReason, TextDelta
from domain.shared.errors import UpstreamUnavailable
from tests.fakes.llm import OneModel, ScriptedProvider
from tests.unit.conftest import Env

pytestmark = pytest.mark.unit


async def _setup(env: Env, provider: ScriptedProvider) -> tuple[Principal, StreamMessage, PostMessageCommand]:
    ada = await env.principal("ada@example.com")
    create = CreateConversation(uow=env.uow, catalog=env.catalog, clock=env.clock, max_conversations_per_user=5)
    conversation = await create.execute(CreateConversationCommand(principal=ada, model="scripted"))
    model_call = ModelCall(models=OneModel(provider), catalog=env.catalog)
    use_case = StreamMessage(uow=env.uow, model_call=model_call, clock=env.clock)
    return ada, use_case, PostMessageCommand(principal=ada, conversation_id=conversation.id, content="hi")


async def _stored(env: Env, ada: Principal, command: PostMessageCommand):  # type: ignore[no-untyped-def]
    found = await GetConversation(uow=env.uow).execute(GetConversationCommand(ada, command.conversation_id))
    return found.messages


async def test_a_full_stream_is_stored_complete(env: Env) -> None:
    provider = ScriptedProvider(["a", "b", "c"])
    ada, use_case, command = await _setup(env, provider)
    events = [e async for e in await use_case.open(command)]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["a", "b", "c"]
    outcome = events[-1]
    assert isinstance(outcome, StreamOutcome)
    assert outcome.error is None
    assert outcome.assistant_message.content == "abc"
    messages = await _stored(env, ada, command)
    assert [m.status for m in messages] == [MessageStatus.COMPLETE, MessageStatus.COMPLETE]


async def test_an_upstream_error_mid_stream_stores_the_partial(env: Env) -> None:
    provider = ScriptedProvider(["a", "b", "c"], fail_after=2, error=UpstreamUnavailable("gone"))
    _, use_case, command = await _setup(env, provider)
    events = [e async for e in await use_case.open(command)]
    outcome = events[-1]
    assert isinstance(outcome, StreamOutcome)
    assert isinstance(outcome.error, UpstreamUnavailable)
    assert outcome.assistant_message.content == "ab"
    assert outcome.assistant_message.status is MessageStatus.INCOMPLETE
    assert outcome.completion.finish_reason is FinishReason.ERROR
    assert outcome.completion.usage.estimated


async def test_a_consumer_leaving_early_closes_the_upstream_and_stores_the_partial(env: Env) -> None:
    provider = ScriptedProvider(["a", "b", "c", "d"])
    ada, use_case, command = await _setup(env, provider)
    opened = await use_case.open(command)
    stream = aiter(opened)
    assert await anext(stream) == TextDelta("a")
    assert await anext(stream) == TextDelta("b")
    await opened.aclose()
    assert provider.closed
    messages = await _stored(env, ada, command)
    assert messages[-1].status is MessageStatus.INCOMPLETE
    assert messages[-1].content == "ab"
    assert messages[-1].finish_reason is FinishReason.CANCELLED


async def test_a_failure_before_any_text_raises_from_open_and_stores_nothing(env: Env) -> None:
    provider = ScriptedProvider(["a"], fail_after=0, error=UpstreamUnavailable("down"))
    ada, use_case, command = await _setup(env, provider)
    with pytest.raises(UpstreamUnavailable):
        await use_case.open(command)
    assert await _stored(env, ada, command) == []

from __future__ import annotations

import pytest

from application.chat.create_conversation import CreateConversation, CreateConversationCommand
from application.chat.delete_conversation import DeleteConversation, DeleteConversationCommand
from application.chat.exchange import ExchangeLimits, PostMessageCommand
from application.chat.get_conversation import GetConversation, GetConversationCommand
from application.chat.list_conversations import ListConversations, ListConversationsCommand
from application.chat.post_message import PostMessage
from application.chat.update_conversation import UpdateConversation, UpdateConversationCommand
from application.llm.model_call import ModelCall
from domain.auth.model import Principal, Scope
from domain.chat.model import DEFAULT_TITLE, Conversation, MessageStatus
from domain.llm.model import ChatRole, FinishReason
from domain.shared.errors import Forbidden, NotFound, RuleViolation
from tests.unit.conftest import Env

pytestmark = pytest.mark.unit


async def _conversation(env: Env, principal: Principal, **kwargs: object) -> Conversation:
    use_case = CreateConversation(uow=env.uow, catalog=env.catalog, clock=env.clock, max_conversations_per_user=5)
    return await use_case.execute(CreateConversationCommand(principal=principal, **kwargs))  # type: ignore[arg-type]


def _post(env: Env) -> PostMessage:
    return PostMessage(uow=env.uow, model_call=ModelCall(models=env.llm, catalog=env.catalog), clock=env.clock)


async def test_create_uses_the_default_model_and_title(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    conversation = await _conversation(env, ada)
    assert conversation.model == "local"
    assert conversation.title == DEFAULT_TITLE
    assert conversation.owner_id == ada.user_id


async def test_create_refuses_unknown_models_and_too_many_conversations(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    with pytest.raises(RuleViolation, match="unknown model"):
        await _conversation(env, ada, model="gpt-17")
    for _ in range(5):
        await _conversation(env, ada)
    with pytest.raises(RuleViolation, match="at most 5"):
        await _conversation(env, ada)


async def test_list_pages_newest_first_without_gaps_or_repeats(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    bob = await env.principal("bob@example.com")
    created = []
    for index in range(5):
        env.clock.advance(seconds=1 if index % 2 else 0)  # some share a timestamp: ids break the tie
        created.append(await _conversation(env, ada, title=f"c{index}"))
    await _conversation(env, bob)
    use_case = ListConversations(uow=env.uow)
    seen: list[str] = []
    cursor = None
    while True:
        page = await use_case.execute(ListConversationsCommand(principal=ada, limit=2, cursor=cursor))
        seen.extend(c.title for c in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = [c.title for c in sorted(created, key=lambda c: (c.created_at, c.id), reverse=True)]
    assert seen == expected


async def test_a_garbage_cursor_is_a_rule_violation(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    with pytest.raises(RuleViolation, match="cursor"):
        await ListConversations(uow=env.uow).execute(ListConversationsCommand(principal=ada, cursor="%%%"))


async def test_post_message_stores_both_turns_in_one_commit(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    conversation = await _conversation(env, ada, system_prompt="Be brief.")
    commits = env.uow.commits
    result = await _post(env).execute(PostMessageCommand(principal=ada, conversation_id=conversation.id, content="Hi"))
    assert env.uow.commits == commits + 1
    assert result.assistant_message.role is ChatRole.ASSISTANT
    assert "Hi" in result.assistant_message.content
    assert result.assistant_message.status is MessageStatus.COMPLETE
    assert result.assistant_message.model == "local"
    assert result.completion.usage.input_tokens > 0
    found = await GetConversation(uow=env.uow).execute(GetConversationCommand(ada, conversation.id))
    assert [(m.role, m.content) for m in found.messages] == [
        (ChatRole.USER, "Hi"),
        (ChatRole.ASSISTANT, result.assistant_message.content),
    ]


async def test_history_is_sent_to_the_model(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    conversation = await _conversation(env, ada, system_prompt="Be brief.")
    post = _post(env)
    first = await post.execute(PostMessageCommand(principal=ada, conversation_id=conversation.id, content="one"))
    second = await post.execute(PostMessageCommand(principal=ada, conversation_id=conversation.id, content="two"))
    # system + user + assistant + user: every token of the history is billed as input.
    assert second.completion.usage.input_tokens > first.completion.usage.input_tokens + 1


async def test_max_tokens_cuts_the_answer(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    conversation = await _conversation(env, ada, model="local-small")
    result = await _post(env).execute(
        PostMessageCommand(principal=ada, conversation_id=conversation.id, content="tell me a long story")
    )
    assert result.completion.finish_reason is FinishReason.LENGTH
    assert result.completion.usage.output_tokens <= 5


async def test_max_tokens_above_the_models_cap_is_refused_before_any_call(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    conversation = await _conversation(env, ada, model="local-small")
    command = PostMessageCommand(principal=ada, conversation_id=conversation.id, content="hi", max_tokens=6)
    commits = env.uow.commits
    with pytest.raises(RuleViolation, match="max_tokens is 6, above the 5 output tokens model 'local-small' allows"):
        await _post(env).execute(command)
    assert env.uow.commits == commits  # nothing stored
    at_cap = PostMessageCommand(principal=ada, conversation_id=conversation.id, content="hi", max_tokens=5)
    assert (await _post(env).execute(at_cap)).completion.usage.output_tokens <= 5


async def test_a_conversation_holds_a_bounded_number_of_messages(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    conversation = await _conversation(env, ada)
    post = PostMessage(
        uow=env.uow,
        model_call=ModelCall(models=env.llm, catalog=env.catalog),
        clock=env.clock,
        limits=ExchangeLimits(max_messages=4),
    )
    for _ in range(2):
        await post.execute(PostMessageCommand(principal=ada, conversation_id=conversation.id, content="hi"))
    with pytest.raises(RuleViolation, match="at most 4 messages"):
        await post.execute(PostMessageCommand(principal=ada, conversation_id=conversation.id, content="hi"))


async def test_conversations_are_invisible_to_others(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    bob = await env.principal("bob@example.com")
    conversation = await _conversation(env, ada)
    with pytest.raises(NotFound):
        await GetConversation(uow=env.uow).execute(GetConversationCommand(bob, conversation.id))
    with pytest.raises(NotFound):
        await _post(env).execute(PostMessageCommand(principal=bob, conversation_id=conversation.id, content="hi"))
    with pytest.raises(NotFound):
        await UpdateConversation(uow=env.uow, catalog=env.catalog, clock=env.clock).execute(
            UpdateConversationCommand(principal=bob, conversation_id=conversation.id, title="mine")
        )
    with pytest.raises(NotFound):
        await DeleteConversation(uow=env.uow).execute(DeleteConversationCommand(bob, conversation.id))
    page = await ListConversations(uow=env.uow).execute(ListConversationsCommand(principal=bob))
    assert page.items == []


async def test_update_changes_only_what_is_given(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    conversation = await _conversation(env, ada, title="old", system_prompt="sys")
    update = UpdateConversation(uow=env.uow, catalog=env.catalog, clock=env.clock)
    renamed = await update.execute(
        UpdateConversationCommand(principal=ada, conversation_id=conversation.id, title="new")
    )
    assert (renamed.title, renamed.system_prompt, renamed.model) == ("new", "sys", "local")
    cleared = await update.execute(
        UpdateConversationCommand(principal=ada, conversation_id=conversation.id, clear_system_prompt=True)
    )
    assert cleared.system_prompt is None
    with pytest.raises(RuleViolation):
        await update.execute(UpdateConversationCommand(principal=ada, conversation_id=conversation.id, model="nope"))


async def test_delete_removes_the_conversation(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    conversation = await _conversation(env, ada)
    await DeleteConversation(uow=env.uow).execute(DeleteConversationCommand(ada, conversation.id))
    with pytest.raises(NotFound):
        await GetConversation(uow=env.uow).execute(GetConversationCommand(ada, conversation.id))


async def test_blank_messages_and_missing_scope_are_refused(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    conversation = await _conversation(env, ada)
    with pytest.raises(RuleViolation):
        await _post(env).execute(PostMessageCommand(principal=ada, conversation_id=conversation.id, content="   "))
    models_only = Principal(user_id=ada.user_id, role=ada.role, scopes=frozenset({Scope.MODELS}))
    with pytest.raises(Forbidden):
        await _post(env).execute(
            PostMessageCommand(principal=models_only, conversation_id=conversation.id, content="x")
        )

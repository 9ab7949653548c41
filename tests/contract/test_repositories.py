"""One contract per repository port, run through the unit of work against every adapter.

The ``uow_factory`` fixture is parametrized over memory, SQLite and PostgreSQL, so each test below runs three
times and the in-memory fakes cannot drift from the real thing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.exc import StatementError

from application.unit_of_work import UnitOfWorkFactory
from domain.auth.model import ApiKey, RefreshToken, Role, Scope, User
from domain.chat.model import Conversation, Message, MessageStatus, PageCursor
from domain.llm.model import ChatRole, FinishReason
from domain.shared.errors import Conflict, NotFound
from infrastructure.memory.unit_of_work import InMemoryUnitOfWorkFactory

pytestmark = pytest.mark.contract

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def a_user(**overrides: Any) -> User:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "email": f"{uuid.uuid4().hex[:10]}@example.com",
        "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        "role": Role.MEMBER,
        "is_active": True,
        "created_at": T0,
        "updated_at": T0,
    }
    return User(**(values | overrides))


def a_key(owner: User, **overrides: Any) -> ApiKey:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "owner_id": owner.id,
        "name": "laptop",
        "scopes": frozenset({Scope.CHAT, Scope.MODELS}),
        "prefix": "sk-sb-abcdefgh",
        "key_hash": uuid.uuid4().hex + uuid.uuid4().hex,
        "created_at": T0,
    }
    return ApiKey(**(values | overrides))


def a_token(user: User, **overrides: Any) -> RefreshToken:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "family_id": uuid.uuid4(),
        "user_id": user.id,
        "issued_at": T0,
        "expires_at": at(3600),
    }
    return RefreshToken(**(values | overrides))


def a_conversation(owner: User, **overrides: Any) -> Conversation:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "owner_id": owner.id,
        "title": "Trip to Lisbon",
        "model": "gpt-4o-mini",
        "system_prompt": None,
        "created_at": T0,
        "updated_at": T0,
    }
    return Conversation(**(values | overrides))


def a_message(conversation: Conversation, **overrides: Any) -> Message:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "conversation_id": conversation.id,
        "role": ChatRole.USER,
        "content": "hello",
        "created_at": T0,
    }
    return Message(**(values | overrides))


async def saved_user(uow_factory: UnitOfWorkFactory, **overrides: Any) -> User:
    user = a_user(**overrides)
    async with uow_factory() as uow:
        await uow.users.add(user)
        await uow.commit()
    return user


async def saved_conversation(uow_factory: UnitOfWorkFactory, owner: User, **overrides: Any) -> Conversation:
    conversation = a_conversation(owner, **overrides)
    async with uow_factory() as uow:
        await uow.conversations.add(conversation)
        await uow.commit()
    return conversation


class TestUnitOfWork:
    async def test_commit_persists(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)
        async with uow_factory() as uow:
            assert await uow.users.get(user.id) == user

    async def test_leaving_without_commit_leaves_nothing(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        user = a_user()
        conversation = a_conversation(owner)
        async with uow_factory() as uow:
            await uow.users.add(user)
            await uow.conversations.add(conversation)
            await uow.conversations.add_messages(a_message(conversation))
        async with uow_factory() as uow:
            assert await uow.users.find(user.id) is None
            assert await uow.users.count() == 1
            assert await uow.conversations.count_by_owner(owner.id) == 0
            assert await uow.conversations.list_messages(conversation.id) == []

    async def test_an_error_rolls_back(self, uow_factory: UnitOfWorkFactory) -> None:
        user = a_user()

        async def fail_half_way() -> None:
            async with uow_factory() as uow:
                await uow.users.add(user)
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await fail_half_way()
        async with uow_factory() as uow:
            assert await uow.users.find(user.id) is None

    async def test_uncommitted_writes_are_invisible_to_others(self, uow_factory: UnitOfWorkFactory) -> None:
        user = a_user()
        async with uow_factory() as writer:
            await writer.users.add(user)
            async with uow_factory() as reader:
                assert await reader.users.find(user.id) is None
            await writer.commit()
        async with uow_factory() as reader:
            assert await reader.users.find(user.id) == user

    async def test_returned_entities_are_not_aliased(self, uow_factory: UnitOfWorkFactory) -> None:
        user = a_user(role=Role.MEMBER)
        async with uow_factory() as uow:
            await uow.users.add(user)
            user.role = Role.ADMIN  # after add: must not reach the store
            await uow.commit()
        async with uow_factory() as uow:
            loaded = await uow.users.get(user.id)
            assert loaded.role is Role.MEMBER
            loaded.email = "changed@example.com"
            again = await uow.users.get(user.id)
        assert again.email != "changed@example.com"
        assert again is not loaded

    async def test_writes_are_visible_inside_the_transaction(self, uow_factory: UnitOfWorkFactory) -> None:
        user = a_user()
        async with uow_factory() as uow:
            await uow.users.add(user)
            assert await uow.users.get(user.id) == user
            assert await uow.users.find_by_email(user.email) == user

    async def test_rollback_after_commit_is_harmless(self, uow_factory: UnitOfWorkFactory) -> None:
        user = a_user()
        async with uow_factory() as uow:
            await uow.users.add(user)
            await uow.commit()
            await uow.rollback()
        async with uow_factory() as uow:
            assert await uow.users.find(user.id) == user


class TestInMemoryUnitOfWork:
    async def test_counts_commits(self) -> None:
        factory = InMemoryUnitOfWorkFactory()
        uow = factory()
        async with uow:
            await uow.users.add(a_user())
            await uow.commit()
        async with factory() as other:
            await other.users.add(a_user())
        assert uow.commits == 1
        assert factory.commits == 1

    async def test_commit_rechecks_the_email_against_later_commits(self) -> None:
        """What PostgreSQL's unique index does by blocking the second insert, the fake does at commit."""
        factory = InMemoryUnitOfWorkFactory()
        async with factory() as first:
            await first.users.add(a_user(email="same@example.com"))
            async with factory() as second:
                await second.users.add(a_user(email="same@example.com"))
                await second.commit()
            with pytest.raises(Conflict):
                await first.commit()
        assert factory.store.commits == 1

    async def test_commit_of_a_delete_cascades_to_messages_committed_meanwhile(self) -> None:
        factory = InMemoryUnitOfWorkFactory()
        owner = await saved_user(factory)
        conversation = await saved_conversation(factory, owner)
        async with factory() as deleting:
            await deleting.conversations.delete(conversation)
            async with factory() as posting:
                await posting.conversations.add_messages(a_message(conversation))
                await posting.commit()
            await deleting.commit()
        assert factory.store.messages == {}

    async def test_repositories_refuse_work_after_the_block(self) -> None:
        factory = InMemoryUnitOfWorkFactory()
        async with factory() as uow:
            users = uow.users
        with pytest.raises(RuntimeError):
            await users.count()


class TestUserRepository:
    async def test_add_then_get_find_and_find_by_email(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory, role=Role.ADMIN, is_active=False)
        async with uow_factory() as uow:
            assert await uow.users.get(user.id) == user
            assert await uow.users.find(user.id) == user
            assert await uow.users.find_by_email(user.email) == user

    async def test_missing_user(self, uow_factory: UnitOfWorkFactory) -> None:
        async with uow_factory() as uow:
            with pytest.raises(NotFound):
                await uow.users.get(uuid.uuid4())
            assert await uow.users.find(uuid.uuid4()) is None
            assert await uow.users.find_by_email("nobody@example.com") is None

    async def test_duplicate_email_is_a_conflict_and_the_transaction_goes_on(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        taken = await saved_user(uow_factory)
        other = a_user()
        async with uow_factory() as uow:
            with pytest.raises(Conflict):
                await uow.users.add(a_user(email=taken.email))
            await uow.users.add(other)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.users.count() == 2
            assert await uow.users.get(other.id) == other

    async def test_email_taken_after_the_check_is_still_a_conflict(self, uow_factory: UnitOfWorkFactory) -> None:
        """The use case checks first; a registration between its check and its insert still conflicts."""
        email = "race@example.com"
        async with uow_factory() as slow:
            assert await slow.users.find_by_email(email) is None
            await saved_user(uow_factory, email=email)
            with pytest.raises(Conflict):
                await slow.users.add(a_user(email=email))

    async def test_update(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)
        user.role, user.is_active, user.password_hash, user.updated_at = Role.ADMIN, False, "new", at(60)
        async with uow_factory() as uow:
            await uow.users.update(user)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.users.get(user.id) == user

    async def test_update_to_a_taken_email_is_a_conflict(self, uow_factory: UnitOfWorkFactory) -> None:
        first = await saved_user(uow_factory)
        second = await saved_user(uow_factory)
        second.email = first.email
        async with uow_factory() as uow:
            with pytest.raises(Conflict):
                await uow.users.update(second)

    async def test_update_of_a_missing_user(self, uow_factory: UnitOfWorkFactory) -> None:
        async with uow_factory() as uow:
            with pytest.raises(NotFound):
                await uow.users.update(a_user())

    async def test_list_page_oldest_first_and_count(self, uow_factory: UnitOfWorkFactory) -> None:
        users = [await saved_user(uow_factory, created_at=at(seconds)) for seconds in (30, 10, 20, 10)]
        expected = sorted(users, key=lambda u: (u.created_at, u.id))
        async with uow_factory() as uow:
            assert await uow.users.count() == 4
            assert await uow.users.list_page(limit=3, offset=0) == expected[:3]
            assert await uow.users.list_page(limit=3, offset=3) == expected[3:]
            assert await uow.users.list_page(limit=3, offset=4) == []


class TestApiKeyRepository:
    async def test_add_then_find_and_find_by_hash(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        key = a_key(owner, scopes=frozenset(Scope), expires_at=at(86400))
        async with uow_factory() as uow:
            await uow.api_keys.add(key)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.api_keys.find(key.id) == key
            found = await uow.api_keys.find_by_hash(key.key_hash)
            assert found == key
            assert found is not None
            assert found.scopes == frozenset(Scope)
            assert await uow.api_keys.find_by_hash("0" * 64) is None
            assert await uow.api_keys.find(uuid.uuid4()) is None

    async def test_add_for_a_missing_owner(self, uow_factory: UnitOfWorkFactory) -> None:
        async with uow_factory() as uow:
            with pytest.raises(NotFound):
                await uow.api_keys.add(a_key(a_user()))

    async def test_count_active_ignores_revoked_expired_and_other_owners(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        stranger = await saved_user(uow_factory)
        now = at(1000)
        async with uow_factory() as uow:
            for key in (
                a_key(owner),
                a_key(owner, expires_at=now + timedelta(seconds=1)),
                a_key(owner, expires_at=now),  # expires exactly now: no longer active
                a_key(owner, expires_at=now - timedelta(days=1)),
                a_key(owner, revoked_at=at(500)),
                a_key(stranger),
            ):
                await uow.api_keys.add(key)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.api_keys.count_active_by_owner(owner.id, now) == 2

    async def test_list_by_owner_newest_first_with_revoked(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        stranger = await saved_user(uow_factory)
        keys = [
            a_key(owner, created_at=at(10)),
            a_key(owner, created_at=at(30), revoked_at=at(40)),
            a_key(owner, created_at=at(20)),
            a_key(owner, created_at=at(20)),
        ]
        async with uow_factory() as uow:
            for key in [*keys, a_key(stranger)]:
                await uow.api_keys.add(key)
            await uow.commit()
        async with uow_factory() as uow:
            listed = await uow.api_keys.list_by_owner(owner.id)
        assert listed == sorted(keys, key=lambda k: (k.created_at, k.id), reverse=True)

    async def test_update(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        key = a_key(owner)
        async with uow_factory() as uow:
            await uow.api_keys.add(key)
            await uow.commit()
        key.last_used_at, key.revoked_at, key.name = at(5), at(6), "renamed"
        async with uow_factory() as uow:
            await uow.api_keys.update(key)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.api_keys.find(key.id) == key
            with pytest.raises(NotFound):
                await uow.api_keys.update(a_key(owner))


class TestRefreshTokenRepository:
    async def test_add_find_update(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)
        token = a_token(user)
        async with uow_factory() as uow:
            await uow.refresh_tokens.add(token)
            await uow.commit()
        token.used_at = at(60)
        async with uow_factory() as uow:
            assert await uow.refresh_tokens.find(token.id) == RefreshToken(**{**vars(token), "used_at": None})
            await uow.refresh_tokens.update(token)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.refresh_tokens.find(token.id) == token
            assert await uow.refresh_tokens.find(uuid.uuid4()) is None
            with pytest.raises(NotFound):
                await uow.refresh_tokens.update(a_token(user))

    async def test_revoke_family_only_touches_that_family(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)
        family = uuid.uuid4()
        earlier = a_token(user, family_id=family, revoked_at=at(1))
        sibling = a_token(user, family_id=family)
        other = a_token(user)
        async with uow_factory() as uow:
            for token in (earlier, sibling, other):
                await uow.refresh_tokens.add(token)
            await uow.refresh_tokens.revoke_family(family, at(100))
            await uow.commit()
        async with uow_factory() as uow:
            assert (await uow.refresh_tokens.find(sibling.id)).revoked_at == at(100)  # type: ignore[union-attr]
            assert (await uow.refresh_tokens.find(earlier.id)).revoked_at == at(1)  # type: ignore[union-attr]
            assert (await uow.refresh_tokens.find(other.id)).revoked_at is None  # type: ignore[union-attr]

    async def test_revoke_all_for_user(self, uow_factory: UnitOfWorkFactory) -> None:
        user = await saved_user(uow_factory)
        stranger = await saved_user(uow_factory)
        mine = [a_token(user), a_token(user)]
        theirs = a_token(stranger)
        async with uow_factory() as uow:
            for token in [*mine, theirs]:
                await uow.refresh_tokens.add(token)
            await uow.commit()
        async with uow_factory() as uow:
            await uow.refresh_tokens.revoke_all_for_user(user.id, at(100))
            await uow.commit()
        async with uow_factory() as uow:
            for token in mine:
                assert (await uow.refresh_tokens.find(token.id)).revoked_at == at(100)  # type: ignore[union-attr]
            assert (await uow.refresh_tokens.find(theirs.id)).revoked_at is None  # type: ignore[union-attr]


class TestConversationRepository:
    async def test_get_owned(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        stranger = await saved_user(uow_factory)
        conversation = await saved_conversation(uow_factory, owner, system_prompt="Be brief.")
        async with uow_factory() as uow:
            assert await uow.conversations.get_owned(conversation.id, owner.id) == conversation
            with pytest.raises(NotFound) as for_stranger:
                await uow.conversations.get_owned(conversation.id, stranger.id)
            with pytest.raises(NotFound) as for_missing:
                await uow.conversations.get_owned(uuid.uuid4(), owner.id)
        assert str(for_stranger.value) == str(for_missing.value)

    async def test_add_for_a_missing_owner(self, uow_factory: UnitOfWorkFactory) -> None:
        async with uow_factory() as uow:
            with pytest.raises(NotFound):
                await uow.conversations.add(a_conversation(a_user()))

    async def test_list_by_owner_pages_newest_first_through_equal_timestamps(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        owner = await saved_user(uow_factory)
        stranger = await saved_user(uow_factory)
        seconds = [0, 10, 10, 10, 20, 30, 30]  # ties must be broken by id, without skipping or repeating
        conversations = [a_conversation(owner, created_at=at(s)) for s in seconds]
        async with uow_factory() as uow:
            for conversation in [*conversations, a_conversation(stranger, created_at=at(15))]:
                await uow.conversations.add(conversation)
            await uow.commit()
        expected = sorted(conversations, key=lambda c: (c.created_at, c.id), reverse=True)

        pages: list[list[Conversation]] = []
        after: PageCursor | None = None
        async with uow_factory() as uow:
            assert await uow.conversations.count_by_owner(owner.id) == 7
            while True:
                page = await uow.conversations.list_by_owner(owner.id, limit=3, after=after)
                if not page:
                    break
                pages.append(page)
                after = PageCursor(created_at=page[-1].created_at, id=page[-1].id)
        assert [len(page) for page in pages] == [3, 3, 1]
        assert [c for page in pages for c in page] == expected

    async def test_cursor_from_another_timezone(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        older = await saved_conversation(uow_factory, owner, created_at=at(0))
        newer = await saved_conversation(uow_factory, owner, created_at=at(60))
        cursor_time = newer.created_at.astimezone(timezone(timedelta(hours=-5)))
        async with uow_factory() as uow:
            page = await uow.conversations.list_by_owner(
                owner.id, limit=10, after=PageCursor(created_at=cursor_time, id=newer.id)
            )
        assert page == [older]

    async def test_update(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        conversation = await saved_conversation(uow_factory, owner)
        conversation.title, conversation.system_prompt, conversation.updated_at = "Renamed", "Pirate", at(9)
        conversation.model = "claude-3-5-haiku"
        async with uow_factory() as uow:
            await uow.conversations.update(conversation)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.conversations.get_owned(conversation.id, owner.id) == conversation
            with pytest.raises(NotFound):
                await uow.conversations.update(a_conversation(owner))

    async def test_touch_sets_updated_at_alone_and_only_for_the_owner(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        stranger = await saved_user(uow_factory)
        conversation = await saved_conversation(uow_factory, owner)
        async with uow_factory() as uow:
            await uow.conversations.touch(conversation.id, owner.id, at(42))
            with pytest.raises(NotFound):
                await uow.conversations.touch(conversation.id, stranger.id, at(43))
            with pytest.raises(NotFound):
                await uow.conversations.touch(a_conversation(owner).id, owner.id, at(44))
            await uow.commit()
        async with uow_factory() as uow:
            stored = await uow.conversations.get_owned(conversation.id, owner.id)
        conversation.updated_at = at(42)
        assert stored == conversation

    async def test_update_never_moves_a_conversation_or_its_creation_time(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        thief = await saved_user(uow_factory)
        conversation = await saved_conversation(uow_factory, owner)
        moved = a_conversation(thief, id=conversation.id, created_at=at(999))
        async with uow_factory() as uow:
            await uow.conversations.update(moved)
            await uow.commit()
        async with uow_factory() as uow:
            stored = await uow.conversations.get_owned(conversation.id, owner.id)
        assert stored.created_at == conversation.created_at

    async def test_delete_cascades_to_messages(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        doomed = await saved_conversation(uow_factory, owner)
        kept = await saved_conversation(uow_factory, owner)
        async with uow_factory() as uow:
            await uow.conversations.add_messages(a_message(doomed), a_message(doomed), a_message(kept))
            await uow.commit()
        async with uow_factory() as uow:
            await uow.conversations.delete(await uow.conversations.get_owned(doomed.id, owner.id))
            await uow.commit()
        async with uow_factory() as uow:
            with pytest.raises(NotFound):
                await uow.conversations.get_owned(doomed.id, owner.id)
            assert await uow.conversations.list_messages(doomed.id) == []
            assert len(await uow.conversations.list_messages(kept.id)) == 1
            assert await uow.conversations.count_by_owner(owner.id) == 1

    async def test_messages_round_trip(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        conversation = await saved_conversation(uow_factory, owner)
        question = a_message(conversation, input_tokens=12)
        answer = a_message(
            conversation,
            role=ChatRole.ASSISTANT,
            content="Hi! " * 1000,
            created_at=at(1),
            status=MessageStatus.INCOMPLETE,
            output_tokens=7,
            model="gpt-4o-mini",
            finish_reason=FinishReason.CANCELLED,
        )
        async with uow_factory() as uow:
            await uow.conversations.add_messages(question, answer)
            await uow.conversations.add_messages()
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.conversations.list_messages(conversation.id) == [question, answer]

    async def test_add_messages_to_a_missing_conversation(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        async with uow_factory() as uow:
            with pytest.raises(NotFound):
                await uow.conversations.add_messages(a_message(a_conversation(owner)))

    async def test_list_messages_oldest_first_and_limit_keeps_the_newest(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        conversation = await saved_conversation(uow_factory, owner)
        other = await saved_conversation(uow_factory, owner)
        messages = [a_message(conversation, created_at=at(s), content=f"m{s}") for s in (5, 1, 3, 3, 4)]
        async with uow_factory() as uow:
            await uow.conversations.add_messages(*messages, a_message(other, created_at=at(2)))
            await uow.commit()
        in_order = sorted(messages, key=lambda m: (m.created_at, m.id))
        async with uow_factory() as uow:
            assert await uow.conversations.list_messages(conversation.id) == in_order
            assert await uow.conversations.list_messages(conversation.id, limit=3) == in_order[-3:]
            assert await uow.conversations.list_messages(conversation.id, limit=50) == in_order
            assert await uow.conversations.list_messages(conversation.id, limit=0) == []

    @pytest.mark.parametrize("one_statement", [False, True], ids=["transaction", "one-statement"])
    async def test_get_owned_with_history_in_one_read(
        self, uow_factory: UnitOfWorkFactory, one_statement: bool
    ) -> None:
        owner = await saved_user(uow_factory)
        stranger = await saved_user(uow_factory)
        conversation = await saved_conversation(uow_factory, owner)
        empty = await saved_conversation(uow_factory, owner)
        other = await saved_conversation(uow_factory, owner)
        messages = [a_message(conversation, created_at=at(s), content=f"m{s}") for s in (5, 1, 3, 3, 4)]
        async with uow_factory() as uow:
            await uow.conversations.add_messages(*messages, a_message(other, created_at=at(2)))
            await uow.commit()
        in_order = sorted(messages, key=lambda m: (m.created_at, m.id))

        def unit() -> Any:
            return uow_factory.for_one_statement() if one_statement else uow_factory()

        async with unit() as uow:
            newest = await uow.conversations.get_owned_with_history(conversation.id, owner.id, limit=3, count_up_to=99)
        assert (newest.conversation, newest.messages, newest.message_count) == (conversation, in_order[-3:], 5)
        async with unit() as uow:
            whole = await uow.conversations.get_owned_with_history(conversation.id, owner.id, limit=50, count_up_to=4)
        assert (whole.messages, whole.message_count) == (in_order, 4)  # counted up to the bound only
        async with unit() as uow:
            none = await uow.conversations.get_owned_with_history(empty.id, owner.id, limit=20, count_up_to=99)
        assert (none.conversation, none.messages, none.message_count) == (empty, [], 0)
        for conversation_id, user_id in ((conversation.id, stranger.id), (uuid.uuid4(), owner.id)):
            async with unit() as uow:
                with pytest.raises(NotFound):  # a stranger's conversation looks exactly like a missing one
                    await uow.conversations.get_owned_with_history(conversation_id, user_id, limit=20, count_up_to=9)

    @pytest.mark.parametrize("one_statement", [False, True], ids=["transaction", "one-statement"])
    async def test_add_turns_touches_and_inserts_only_for_the_owner(
        self, uow_factory: UnitOfWorkFactory, one_statement: bool
    ) -> None:
        owner = await saved_user(uow_factory)
        stranger = await saved_user(uow_factory)
        conversation = await saved_conversation(uow_factory, owner)
        question, answer = a_message(conversation), a_message(conversation, role=ChatRole.ASSISTANT, created_at=at(1))

        def unit() -> Any:
            return uow_factory.for_one_statement() if one_statement else uow_factory()

        for user_id in (stranger.id, owner.id):
            async with unit() as uow:
                with pytest.raises(NotFound):
                    await uow.conversations.add_turns(a_conversation(owner).id, user_id, at(7), question, answer)
        async with unit() as uow:
            with pytest.raises(NotFound):
                await uow.conversations.add_turns(conversation.id, stranger.id, at(8), question, answer)
        async with uow_factory() as uow:
            assert await uow.conversations.list_messages(conversation.id) == []  # nothing written for a stranger
            assert (await uow.conversations.get_owned(conversation.id, owner.id)).updated_at == conversation.updated_at
        async with unit() as uow:
            await uow.conversations.add_turns(conversation.id, owner.id, at(9), question, answer)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.conversations.list_messages(conversation.id) == [question, answer]
            assert (await uow.conversations.get_owned(conversation.id, owner.id)).updated_at == at(9)

    async def test_count_messages(self, uow_factory: UnitOfWorkFactory) -> None:
        owner = await saved_user(uow_factory)
        conversation = await saved_conversation(uow_factory, owner)
        other = await saved_conversation(uow_factory, owner)
        async with uow_factory() as uow:
            await uow.conversations.add_messages(*(a_message(conversation) for _ in range(3)), a_message(other))
            assert await uow.conversations.count_messages(conversation.id) == 3  # its own writes count
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.conversations.count_messages(conversation.id) == 3
            assert await uow.conversations.count_messages(uuid.uuid4()) == 0


class TestTimestamps:
    async def test_come_back_aware_utc(self, uow_factory: UnitOfWorkFactory) -> None:
        lisbon_summer = timezone(timedelta(hours=1))
        created = datetime(2024, 7, 1, 9, 30, 15, 123456, tzinfo=lisbon_summer)
        user = await saved_user(uow_factory, created_at=created, updated_at=created)
        owner_key = a_key(user, created_at=created, expires_at=created + timedelta(days=30))
        async with uow_factory() as uow:
            await uow.api_keys.add(owner_key)
            await uow.commit()
        async with uow_factory() as uow:
            loaded = await uow.users.get(user.id)
            key = await uow.api_keys.find(owner_key.id)
        assert key is not None
        for value in (loaded.created_at, loaded.updated_at, key.created_at, key.expires_at):
            assert value is not None
            assert value.tzinfo is UTC
            assert value.utcoffset() == timedelta(0)
        assert loaded.created_at == created
        assert loaded.created_at.hour == 8
        assert key.last_used_at is None

    async def test_naive_timestamps_are_refused(self, uow_factory: UnitOfWorkFactory) -> None:
        async with uow_factory() as uow:
            with pytest.raises((ValueError, StatementError), match="naive datetime"):
                await uow.users.add(a_user(created_at=datetime(2024, 1, 1)))

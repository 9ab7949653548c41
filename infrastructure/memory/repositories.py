"""In-memory adapters of the repository ports, behaving like the SQLAlchemy ones (contract tests check it).

They work on a ``Transaction`` of the in-memory unit of work: reads copy entities out, writes copy them in, so
a caller never holds an object that is also in the store.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from domain.audit.model import AuditEntry
from domain.audit.ports import AuditLog
from domain.auth.model import ApiKey, RefreshToken, User
from domain.auth.ports import ApiKeyRepository, RefreshTokenRepository, UserRepository
from domain.chat.model import Conversation, Message, PageCursor
from domain.chat.ports import ConversationRepository
from domain.idempotency.model import IdempotencyRecord
from domain.idempotency.ports import IdempotencyRepository
from domain.shared.errors import Conflict, NotFound
from infrastructure.memory.store import (
    CONVERSATION_NOT_FOUND,
    EMAIL_TAKEN,
    IDEMPOTENCY_KEY_TAKEN,
    E,
    Table,
    Transaction,
    copy_out,
)


class InMemoryRepository:
    def __init__(self, transaction: Transaction) -> None:
        self._tx = transaction

    def _insert(self, table: Table[E], entity: E) -> None:
        self._tx.check_open()
        if table.get(entity.id) is not None:
            raise ValueError(f"duplicate primary key {entity.id}")
        table.put(entity)

    def _replace(self, table: Table[E], entity: E, missing: str) -> None:
        self._tx.check_open()
        if table.get(entity.id) is None:
            raise NotFound(missing)
        table.put(entity)

    def _require_user(self, user_id: uuid.UUID) -> None:
        if self._tx.users.get(user_id) is None:
            raise NotFound(f"user {user_id} not found")


class InMemoryUserRepository(InMemoryRepository, UserRepository):
    async def add(self, user: User) -> None:
        self._check_email_free(user)
        self._insert(self._tx.users, user)

    async def get(self, user_id: uuid.UUID) -> User:
        user = await self.find(user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

    async def find(self, user_id: uuid.UUID) -> User | None:
        self._tx.check_open()
        user = self._tx.users.get(user_id)
        return copy_out(user) if user is not None else None

    async def find_by_email(self, email: str) -> User | None:
        self._tx.check_open()
        found = self._tx.users.where(lambda user: user.email == email)
        return copy_out(found[0]) if found else None

    async def list_page(self, *, limit: int, offset: int) -> list[User]:
        self._tx.check_open()
        if limit <= 0:
            return []
        rows = sorted(self._tx.users.rows(), key=lambda user: (user.created_at, user.id))
        start = max(offset, 0)
        return [copy_out(user) for user in rows[start : start + limit]]

    async def count(self) -> int:
        self._tx.check_open()
        return sum(1 for _ in self._tx.users.rows())

    async def update(self, user: User) -> None:
        stored = self._tx.users.get(user.id)
        if stored is None:
            raise NotFound(f"user {user.id} not found")
        self._check_email_free(user)
        user = copy_out(user)
        user.created_at = stored.created_at  # like the SQL update, which leaves it alone
        self._replace(self._tx.users, user, f"user {user.id} not found")

    def _check_email_free(self, user: User) -> None:
        if self._tx.users.where(lambda other: other.email == user.email and other.id != user.id):
            raise Conflict(EMAIL_TAKEN)


class InMemoryApiKeyRepository(InMemoryRepository, ApiKeyRepository):
    async def add(self, key: ApiKey) -> None:
        self._require_user(key.owner_id)
        if self._tx.api_keys.where(lambda other: other.key_hash == key.key_hash):
            raise ValueError("duplicate API key hash")  # the database's unique constraint, untranslated there too
        self._insert(self._tx.api_keys, key)

    async def find(self, key_id: uuid.UUID) -> ApiKey | None:
        self._tx.check_open()
        key = self._tx.api_keys.get(key_id)
        return copy_out(key) if key is not None else None

    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        self._tx.check_open()
        found = self._tx.api_keys.where(lambda key: key.key_hash == key_hash)
        return copy_out(found[0]) if found else None

    async def list_by_owner(self, owner_id: uuid.UUID) -> list[ApiKey]:
        self._tx.check_open()
        keys = self._tx.api_keys.where(lambda key: key.owner_id == owner_id)
        keys.sort(key=lambda key: (key.created_at, key.id), reverse=True)
        return [copy_out(key) for key in keys]

    async def count_active_by_owner(self, owner_id: uuid.UUID, now: datetime) -> int:
        self._tx.check_open()
        return len(
            self._tx.api_keys.where(
                lambda key: (
                    key.owner_id == owner_id
                    and key.revoked_at is None
                    and (key.expires_at is None or key.expires_at > now)
                )
            )
        )

    async def update(self, key: ApiKey) -> None:
        stored = self._tx.api_keys.get(key.id)
        if stored is not None:  # like the SQL update, which leaves these columns alone
            key = copy_out(key)
            key.owner_id, key.key_hash = stored.owner_id, stored.key_hash
            key.prefix, key.created_at = stored.prefix, stored.created_at
        self._replace(self._tx.api_keys, key, f"API key {key.id} not found")


class InMemoryRefreshTokenRepository(InMemoryRepository, RefreshTokenRepository):
    async def add(self, token: RefreshToken) -> None:
        self._require_user(token.user_id)
        self._insert(self._tx.refresh_tokens, token)

    async def find(self, token_id: uuid.UUID) -> RefreshToken | None:
        self._tx.check_open()
        token = self._tx.refresh_tokens.get(token_id)
        return copy_out(token) if token is not None else None

    async def update(self, token: RefreshToken) -> None:
        stored = self._tx.refresh_tokens.get(token.id)
        if stored is not None:
            token = copy_out(token)
            token.family_id, token.user_id, token.issued_at = (
                stored.family_id,
                stored.user_id,
                stored.issued_at,
            )
        self._replace(self._tx.refresh_tokens, token, f"refresh token {token.id} not found")

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        self._revoke([t for t in self._tx.refresh_tokens.rows() if t.family_id == family_id], at)

    async def revoke_all_for_user(self, user_id: uuid.UUID, at: datetime) -> None:
        self._revoke([t for t in self._tx.refresh_tokens.rows() if t.user_id == user_id], at)

    def _revoke(self, tokens: list[RefreshToken], at: datetime) -> None:
        self._tx.check_open()
        for token in tokens:
            if token.revoked_at is None:
                revoked = copy_out(token)
                revoked.revoked_at = at
                self._tx.refresh_tokens.put(revoked)


class InMemoryConversationRepository(InMemoryRepository, ConversationRepository):
    async def add(self, conversation: Conversation) -> None:
        self._require_user(conversation.owner_id)
        self._insert(self._tx.conversations, conversation)

    async def get_owned(self, conversation_id: uuid.UUID, owner_id: uuid.UUID) -> Conversation:
        self._tx.check_open()
        conversation = self._tx.conversations.get(conversation_id)
        if conversation is None or conversation.owner_id != owner_id:
            raise NotFound(CONVERSATION_NOT_FOUND)
        return copy_out(conversation)

    async def list_by_owner(self, owner_id: uuid.UUID, *, limit: int, after: PageCursor | None) -> list[Conversation]:
        self._tx.check_open()
        if limit <= 0:
            return []
        rows = self._tx.conversations.where(
            lambda c: c.owner_id == owner_id and (after is None or (c.created_at, c.id) < (after.created_at, after.id))
        )
        rows.sort(key=lambda c: (c.created_at, c.id), reverse=True)
        return [copy_out(c) for c in rows[:limit]]

    async def count_by_owner(self, owner_id: uuid.UUID) -> int:
        self._tx.check_open()
        return len(self._tx.conversations.where(lambda c: c.owner_id == owner_id))

    async def update(self, conversation: Conversation) -> None:
        stored = self._tx.conversations.get(conversation.id)
        if stored is not None:
            conversation = copy_out(conversation)
            conversation.owner_id, conversation.created_at = stored.owner_id, stored.created_at
        self._replace(self._tx.conversations, conversation, CONVERSATION_NOT_FOUND)

    async def touch(self, conversation_id: uuid.UUID, owner_id: uuid.UUID, at: datetime) -> None:
        stored = await self.get_owned(conversation_id, owner_id)
        stored.updated_at = at
        await self.update(stored)

    async def delete(self, conversation: Conversation) -> None:
        self._tx.check_open()
        if self._tx.conversations.get(conversation.id) is None:
            return
        for message in self._tx.messages.where(lambda m: m.conversation_id == conversation.id):
            self._tx.messages.delete(message.id)
        self._tx.conversations.delete(conversation.id)

    async def add_messages(self, *messages: Message) -> None:
        self._tx.check_open()
        for message in messages:  # all or nothing, like one INSERT statement
            if self._tx.conversations.get(message.conversation_id) is None:
                raise NotFound(CONVERSATION_NOT_FOUND)
            if self._tx.messages.get(message.id) is not None:
                raise ValueError(f"duplicate primary key {message.id}")
        for message in messages:
            self._tx.messages.put(message)

    async def count_messages(self, conversation_id: uuid.UUID) -> int:
        self._tx.check_open()
        return len(self._tx.messages.where(lambda m: m.conversation_id == conversation_id))

    async def list_messages(self, conversation_id: uuid.UUID, *, limit: int | None = None) -> list[Message]:
        self._tx.check_open()
        rows = self._tx.messages.where(lambda m: m.conversation_id == conversation_id)
        rows.sort(key=lambda m: (m.created_at, m.id))
        if limit is not None:
            rows = rows[-limit:] if limit > 0 else []
        return [copy_out(m) for m in rows]


class InMemoryIdempotencyRepository(InMemoryRepository, IdempotencyRepository):
    async def add(self, record: IdempotencyRecord) -> None:
        if await self.find(record.user_id, record.key) is not None:
            raise Conflict(IDEMPOTENCY_KEY_TAKEN)
        if self._tx.users.get(record.user_id) is None:
            raise NotFound(f"user {record.user_id} not found")
        self._insert(self._tx.idempotency, record)

    async def find(self, user_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
        self._tx.check_open()
        found = self._tx.idempotency.where(lambda r: r.user_id == user_id and r.key == key)
        return copy_out(found[0]) if found else None

    async def update(self, record: IdempotencyRecord) -> None:
        self._replace(self._tx.idempotency, record, "idempotency record not found")

    async def delete(self, record_id: uuid.UUID) -> None:
        self._tx.check_open()
        if self._tx.idempotency.get(record_id) is not None:
            self._tx.idempotency.delete(record_id)

    async def delete_expired(self, user_id: uuid.UUID, now: datetime) -> int:
        self._tx.check_open()
        expired = self._tx.idempotency.where(lambda r: r.user_id == user_id and r.expires_at <= now)
        for record in expired:
            self._tx.idempotency.delete(record.id)
        return len(expired)


class InMemoryAuditLog(InMemoryRepository, AuditLog):
    def __init__(self, transaction: Transaction) -> None:
        super().__init__(transaction)
        self.added: list[AuditEntry] = []  # published by the unit of work after its commit

    async def add(self, entry: AuditEntry) -> None:
        self._insert(self._tx.audit_log, entry)
        self.added.append(entry)

    async def list_by_target(self, target_type: str, target_id: str, *, limit: int = 100) -> list[AuditEntry]:
        self._tx.check_open()
        rows = self._tx.audit_log.where(lambda e: e.target_type == target_type and e.target_id == target_id)
        rows.sort(key=lambda e: (e.occurred_at, e.id), reverse=True)
        return [copy_out(e) for e in rows[: max(limit, 0)]]

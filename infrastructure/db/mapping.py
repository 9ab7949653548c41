"""Explicit conversion between table rows and domain entities.

The domain's dataclasses know nothing of SQLAlchemy: repositories run Core statements and build fresh entities
from the rows, so no entity is attached to a session, none expires on commit and nothing can lazy-load.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping

from domain.audit.model import AuditEntry
from domain.auth.model import ApiKey, RefreshToken, Role, Scope, User
from domain.chat.model import Conversation, Message, MessageStatus
from domain.llm.model import ChatRole, FinishReason

Row = RowMapping


def user_values(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "password_hash": user.password_hash,
        "role": user.role.value,
        "is_active": user.is_active,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def user_from_row(row: Row) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        password_hash=row["password_hash"],
        role=Role(row["role"]),
        is_active=row["is_active"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def api_key_values(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "owner_id": key.owner_id,
        "name": key.name,
        "scopes": sorted(Scope(scope).value for scope in key.scopes),
        "prefix": key.prefix,
        "key_hash": key.key_hash,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


def api_key_from_row(row: Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        owner_id=row["owner_id"],
        name=row["name"],
        scopes=frozenset(Scope(scope) for scope in row["scopes"]),
        prefix=row["prefix"],
        key_hash=row["key_hash"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


def refresh_token_values(token: RefreshToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "family_id": token.family_id,
        "user_id": token.user_id,
        "issued_at": token.issued_at,
        "expires_at": token.expires_at,
        "used_at": token.used_at,
        "revoked_at": token.revoked_at,
    }


def refresh_token_from_row(row: Row) -> RefreshToken:
    return RefreshToken(
        id=row["id"],
        family_id=row["family_id"],
        user_id=row["user_id"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        used_at=row["used_at"],
        revoked_at=row["revoked_at"],
    )


def conversation_values(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "owner_id": conversation.owner_id,
        "title": conversation.title,
        "model": conversation.model,
        "system_prompt": conversation.system_prompt,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
    }


def conversation_from_row(row: Row) -> Conversation:
    return Conversation(
        id=row["id"],
        owner_id=row["owner_id"],
        title=row["title"],
        model=row["model"],
        system_prompt=row["system_prompt"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def message_values(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "role": message.role.value,
        "content": message.content,
        "created_at": message.created_at,
        "status": message.status.value,
        "input_tokens": message.input_tokens,
        "output_tokens": message.output_tokens,
        "model": message.model,
        "finish_reason": message.finish_reason.value if message.finish_reason is not None else None,
    }


def message_from_row(row: Row) -> Message:
    finish_reason = row["finish_reason"]
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        role=ChatRole(row["role"]),
        content=row["content"],
        created_at=row["created_at"],
        status=MessageStatus(row["status"]),
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        model=row["model"],
        finish_reason=FinishReason(finish_reason) if finish_reason is not None else None,
    )


def audit_entry_values(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "occurred_at": entry.occurred_at,
        "actor_id": entry.actor_id,
        "actor_api_key_id": entry.actor_api_key_id,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "before": entry.before,
        "after": entry.after,
        "request_id": entry.request_id,
    }


def audit_entry_from_row(row: Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        occurred_at=row["occurred_at"],
        actor_id=row["actor_id"],
        actor_api_key_id=row["actor_api_key_id"],
        action=row["action"],
        target_type=row["target_type"],
        target_id=row["target_id"],
        before=row["before"],
        after=row["after"],
        request_id=row["request_id"],
    )

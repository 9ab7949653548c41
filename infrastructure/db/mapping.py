"""Explicit conversion between table rows and domain entities.

The domain's dataclasses know nothing of SQLAlchemy: repositories run Core statements and build fresh entities
from the rows, so no entity is attached to a session, none expires on commit and nothing can lazy-load.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from domain.audit.model import AuditEntry
from domain.auth.model import ApiKey, RefreshToken, Role, Scope, User
from domain.chat.model import Conversation, Message, MessageStatus
from domain.files.model import FilePurpose, StoredFile
from domain.idempotency.model import IdempotencyRecord, RecordState, StoredResponse
from domain.llm.model import ChatRole, FinishReason, KeyOwner
from domain.usage.model import Limits, UsageRecord, UsageStatus
from infrastructure.db.citations_json import citations_from_json, citations_json

Row = Mapping[Any, Any]  # a RowMapping, or a dict picked out of a joined row


def user_values(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "password_hash": user.password_hash,
        "role": user.role.value,
        "is_active": user.is_active,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
        **limits_values(user.limits),
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
        limits=limits_from_row(row),
    )


def limits_values(limits: Limits) -> dict[str, Any]:
    return {
        "monthly_budget_micros": limits.monthly_budget_micros,
        "requests_per_minute": limits.requests_per_minute,
        "tokens_per_minute": limits.tokens_per_minute,
    }


def limits_from_row(row: Row) -> Limits:
    return Limits(
        monthly_budget_micros=row["monthly_budget_micros"],
        requests_per_minute=row["requests_per_minute"],
        tokens_per_minute=row["tokens_per_minute"],
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
        **limits_values(key.limits),
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
        limits=limits_from_row(row),
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
        "vector_store_ids": [i.hex for i in conversation.vector_store_ids] or None,
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
        vector_store_ids=tuple(uuid.UUID(hex=i) for i in row["vector_store_ids"] or ()),
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
        "citations": citations_json(message.citations),
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
        citations=citations_from_json(row["citations"]),
    )


def usage_record_values(record: UsageRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in USAGE_COLUMNS}
    values["status"] = record.status.value
    values["key_owner"] = record.key_owner.value
    return values


def usage_record_from_row(row: Row) -> UsageRecord:
    values = {name: row[name] for name in USAGE_COLUMNS}
    values["status"] = UsageStatus(row["status"])
    values["key_owner"] = KeyOwner(row["key_owner"])
    return UsageRecord(**values)


USAGE_COLUMNS = (
    "id",
    "created_at",
    "request_id",
    "user_id",
    "api_key_id",
    "conversation_id",
    "model",
    "served_model",
    "provider",
    "upstream_model",
    "variant",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cost_micros",
    "cache_savings_micros",
    "latency_ms",
    "ttft_ms",
    "status",
    "error_code",
    "cached",
    "streamed",
    "estimated",
    "batch_id",
    "batch_priced",
    "key_owner",
)


def idempotency_values(record: IdempotencyRecord) -> dict[str, Any]:
    response = record.response
    return {
        "id": record.id,
        "user_id": record.user_id,
        "key": record.key,
        "fingerprint": record.fingerprint,
        "state": record.state.value,
        "response_status": response.status if response else None,
        "response_media_type": response.media_type if response else None,
        "response_body": response.body if response else None,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
    }


def idempotency_from_row(row: Row) -> IdempotencyRecord:
    response = None
    if row["response_status"] is not None:
        response = StoredResponse(
            status=row["response_status"], media_type=row["response_media_type"], body=row["response_body"]
        )
    return IdempotencyRecord(
        id=row["id"],
        user_id=row["user_id"],
        key=row["key"],
        fingerprint=row["fingerprint"],
        state=RecordState(row["state"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        response=response,
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


def file_values(file: StoredFile) -> dict[str, Any]:
    return {
        "id": file.id,
        "owner_id": file.owner_id,
        "filename": file.filename,
        "purpose": file.purpose.value,
        "size_bytes": file.size_bytes,
        "created_at": file.created_at,
        "expires_at": file.expires_at,
    }


def file_from_row(row: Row) -> StoredFile:
    return StoredFile(
        id=row["id"],
        owner_id=row["owner_id"],
        filename=row["filename"],
        purpose=FilePurpose(row["purpose"]),
        size_bytes=row["size_bytes"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
    )

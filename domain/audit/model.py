"""The audit trail: who changed what, when, from what to what. Written in the transaction of the change itself."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    id: uuid.UUID
    occurred_at: datetime
    actor_id: uuid.UUID  # the user who acted
    actor_api_key_id: uuid.UUID | None  # the key they acted with, when not a login session
    action: str  # dotted and stable: "user.update"
    target_type: str  # "user"
    target_id: str
    before: dict[str, Any] | None = field(default=None)  # the changed fields as they were (None: created)
    after: dict[str, Any] | None = field(default=None)  # and as they are now (None: deleted)
    request_id: str | None = None


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only what differs, on both sides: an audit row says what changed, not the whole record twice."""
    keys = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}

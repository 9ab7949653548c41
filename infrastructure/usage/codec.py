"""A usage record as bytes, for the journal and the Redis stream: a JSON array in the ledger's column order.

An array rather than an object keeps each record about half as long; the leading version number lets a newer
process read what an older one wrote. A line that does not decode (the torn tail of a journal after a power loss)
raises ``ValueError``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from operator import attrgetter
from typing import Any

import orjson

from domain.llm.model import KeyOwner
from domain.usage.model import UsageRecord, UsageStatus
from infrastructure.db.mapping import USAGE_COLUMNS

# 2 added the prompt cache's writes and savings, 3 the batch, 4 whose key paid; a record of an older version still
# reads (the columns it lacks keep their defaults).
VERSION = 4
_ADDED_IN_2 = ("cache_write_tokens", "cache_savings_micros")
_ADDED_IN_3 = ("batch_id", "batch_priced")
_ADDED_IN_4 = ("key_owner",)
_COLUMNS = {
    4: tuple(USAGE_COLUMNS),
    3: tuple(c for c in USAGE_COLUMNS if c not in _ADDED_IN_4),
    2: tuple(c for c in USAGE_COLUMNS if c not in _ADDED_IN_3 + _ADDED_IN_4),
    1: tuple(c for c in USAGE_COLUMNS if c not in _ADDED_IN_2 + _ADDED_IN_3 + _ADDED_IN_4),
}
_FIELDS = attrgetter(*USAGE_COLUMNS)
_UUIDS = frozenset({"id", "user_id", "api_key_id", "conversation_id", "batch_id"})


def encode(record: UsageRecord) -> bytes:
    return orjson.dumps((VERSION, *_FIELDS(record)), default=_uuid_subclass)


def _uuid_subclass(value: object) -> str:
    """A driver's own UUID type (asyncpg returns one for ids read back from PostgreSQL)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not part of a usage record")


def decode(data: bytes | str) -> UsageRecord:
    try:
        values = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not a usage record: {exc}") from None
    columns = _COLUMNS.get(values[0]) if isinstance(values, list) and values else None
    if columns is None or len(values) != len(columns) + 1:
        raise ValueError("not a usage record of a known version")
    fields: dict[str, Any] = dict(zip(columns, values[1:], strict=True))  # columns added later keep their defaults
    try:
        for name in _UUIDS:
            if fields.get(name) is not None:
                fields[name] = uuid.UUID(fields[name])
        fields["created_at"] = datetime.fromisoformat(fields["created_at"])
        fields["status"] = UsageStatus(fields["status"])
        if "key_owner" in fields:
            fields["key_owner"] = KeyOwner(fields["key_owner"])
        return UsageRecord(**fields)
    except (TypeError, KeyError) as exc:
        raise ValueError(f"not a usage record: {exc!r}") from None

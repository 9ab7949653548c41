"""Idempotency keys: a client names a request so that sending it again (a retry after a timeout) cannot make the
model answer twice or bill twice. The first request's result is stored under its key and replayed to the next."""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.shared.errors import RuleViolation

MAX_KEY_LENGTH = 255
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as HTTP header values allow without encoding


def check_idempotency_key(key: str) -> None:
    if not _KEY.match(key):
        raise RuleViolation(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters")


class RecordState(enum.StrEnum):
    IN_PROGRESS = "in_progress"  # the first request is still running
    COMPLETED = "completed"  # its response is stored for replay


@dataclass(frozen=True)
class StoredResponse:
    """What the first request answered, to answer its replays with."""

    status: int
    media_type: str
    body: str


@dataclass(kw_only=True)
class IdempotencyRecord:
    """One key of one user. ``fingerprint`` identifies the request it was first used with; ``expires_at`` ends an
    in-progress lease (a crashed request frees its key) or, once completed, the time its response is kept."""

    id: uuid.UUID
    user_id: uuid.UUID
    key: str
    fingerprint: str
    state: RecordState
    created_at: datetime
    expires_at: datetime
    response: StoredResponse | None = None

    def is_live(self, now: datetime) -> bool:
        return self.expires_at > now

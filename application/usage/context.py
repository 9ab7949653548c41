"""Who is calling a model, and on whose behalf: what admission, accounting and the response cache need."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.usage.response_cache import CachePolicy
from domain.auth.model import Principal

__all__ = ["CachePolicy", "CallContext"]


@dataclass(frozen=True, kw_only=True)
class CallContext:
    principal: Principal
    request_id: str
    conversation_id: uuid.UUID | None = None
    batch_id: uuid.UUID | None = None  # a batch line's call: its usage record names the batch
    cache: CachePolicy = CachePolicy.DEFAULT

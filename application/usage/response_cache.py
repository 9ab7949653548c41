"""Exact-match response cache: which requests may be answered from it, under which key, and fail-soft access.

A request is eligible when the client opted in (``CachePolicy.PREFER``), or by default when it is deterministic
(temperature 0); never when the client opted out. The key is a SHA-256 of a canonical JSON of the tenant scope (the
user, unless the cache is configured shared), the public model, the messages and every sampling parameter, so two
users never share an entry unless the operator said so. A cache that is down is a miss, never an error.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
from dataclasses import asdict

from application.degraded import DegradedWarning
from domain.auth.model import Principal
from domain.llm.model import Completion, CompletionRequest, FinishReason, KeyOwner
from domain.shared.errors import DependencyUnavailable
from domain.usage.ports import CompletionCache

logger = logging.getLogger("switchboard.usage")
CACHEABLE_FINISH = frozenset({FinishReason.STOP, FinishReason.LENGTH})
KEY_VERSION = 1


class CachePolicy(enum.StrEnum):
    DEFAULT = "default"  # cache deterministic requests (temperature 0) only
    PREFER = "prefer"  # the client opted in: cache whatever the temperature
    BYPASS = "bypass"  # the client opted out (Cache-Control: no-store)


class CacheStatus(enum.StrEnum):
    HIT = "hit"
    MISS = "miss"  # eligible, not found: the answer is now stored
    BYPASS = "bypass"  # not eligible (opted out, not deterministic) or no cache configured


def is_eligible(request: CompletionRequest, policy: CachePolicy) -> bool:
    if policy is CachePolicy.BYPASS:
        return False
    return policy is CachePolicy.PREFER or request.temperature == 0


def cache_key(request: CompletionRequest, scope: str) -> str:
    canonical = {
        "v": KEY_VERSION,
        "scope": scope,
        "model": request.model,
        "messages": [
            [m.role.value, m.content, [asdict(c) for c in m.tool_calls], m.tool_call_id] for m in request.messages
        ],
        "tools": [asdict(t) for t in request.tools],
        "tool_choice": asdict(request.tool_choice) if request.tool_choice is not None else None,
        "response_format": asdict(request.response_format) if request.response_format is not None else None,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop),
    }
    if request.reasoning is not None:  # only when set, so the keys of earlier entries still match
        canonical["reasoning"] = asdict(request.reasoning)
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "cache:" + hashlib.sha256(text.encode()).hexdigest()


class ResponseCache:
    def __init__(self, *, cache: CompletionCache, ttl_seconds: int, shared: bool = False) -> None:
        self._cache = cache
        self._ttl = ttl_seconds
        self._shared = shared
        self._degraded = DegradedWarning("response cache")

    def key_for(self, request: CompletionRequest, principal: Principal, policy: CachePolicy) -> str | None:
        """The entry's key, or ``None`` when this request must not use the cache."""
        if not is_eligible(request, policy):
            return None
        return cache_key(request, "shared" if self._shared else f"user:{principal.user_id}")

    async def get(self, key: str) -> Completion | None:
        try:
            return await self._cache.get(key)
        except DependencyUnavailable as exc:
            self._degraded.warn(exc, "answering without the cache")
            return None

    async def put(self, key: str, completion: Completion) -> None:
        if completion.cached or completion.finish_reason not in CACHEABLE_FINISH:
            return
        if self._shared and completion.served_by.key_owner is KeyOwner.USER:
            return  # a user's own key paid for it: never handed to other users for free

        try:
            await self._cache.put(key, completion, self._ttl)
        except DependencyUnavailable as exc:
            self._degraded.warn(exc, "answers are not cached")

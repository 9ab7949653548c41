"""The response cache in Redis, shared by every instance; Redis evicts and expires the entries (TTL per entry)."""

from __future__ import annotations

from redis.asyncio import Redis

from domain.llm.model import Completion
from domain.usage.ports import CompletionCache
from infrastructure.llm.completion_codec import decode_completion, encode_completion
from infrastructure.redis.client import translated_errors


class RedisCompletionCache(CompletionCache):
    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def get(self, key: str) -> Completion | None:
        async with translated_errors("response cache"):
            raw = await self._redis.get(self._prefix + key)
        return None if raw is None else decode_completion(raw if isinstance(raw, bytes) else raw.encode())

    async def put(self, key: str, completion: Completion, ttl_seconds: int) -> None:
        async with translated_errors("response cache"):
            await self._redis.set(self._prefix + key, encode_completion(completion), ex=ttl_seconds)

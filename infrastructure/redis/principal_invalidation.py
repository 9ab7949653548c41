"""Revocations, deactivations and limit changes reach every instance's authentication cache at once.

The in-process cache of authenticated callers (``application.auth.principal_cache``) is invalidated by the use case
that changes a key or a user, in the instance that ran it; the others would go on trusting their entry for up to
its time to live. With Redis, each invalidation is also published on a channel every instance listens to, and each
drops its own entries. Delivery is best effort (Redis pub/sub keeps nothing for a listener that is away): the time
to live still bounds how long an entry can outlive a change, as without Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from application.auth.principal_cache import PrincipalCache
from application.degraded import DegradedWarning

logger = logging.getLogger("switchboard.auth")
CHANNEL = "principal-invalidations"
RETRY_SECONDS = 1.0


class BroadcastPrincipalCache(PrincipalCache):
    """A ``PrincipalCache`` whose invalidations every instance on the same Redis (and key prefix) applies too.
    ``start`` in the running loop begins listening; ``aclose`` stops."""

    def __init__(self, *, ttl_seconds: float, redis: Redis, prefix: str, max_entries: int = 10_000) -> None:
        super().__init__(ttl_seconds=ttl_seconds, max_entries=max_entries)
        self._redis = redis
        self._channel = prefix + CHANNEL
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._publishing: set[asyncio.Task[None]] = set()
        # Once per 10 s at most, with a count, like every other degraded-service warning (the listener retries each s).
        self._not_hearing = DegradedWarning("invalidation channel", logger="switchboard.auth")
        self._not_telling = DegradedWarning("invalidation broadcast", logger="switchboard.auth")

    def invalidate_user(self, user_id: uuid.UUID) -> None:
        super().invalidate_user(user_id)
        self._publish(f"user:{user_id}")

    def invalidate_key(self, key_id: uuid.UUID) -> None:
        super().invalidate_key(key_id)
        self._publish(f"key:{key_id}")

    async def start(self) -> None:
        """Listens from now on (returns once subscribed, or after a first failed attempt)."""
        if self._listener is None and self.enabled:
            self._listener = asyncio.ensure_future(self._listen())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._listening.wait(), RETRY_SECONDS)

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._publishing:
            await asyncio.gather(*self._publishing, return_exceptions=True)

    def _publish(self, message: str) -> None:
        if not self.enabled:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._send(message))
        except RuntimeError:  # no loop (a command-line tool): nobody else to tell
            return
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _send(self, message: str) -> None:
        try:
            await self._redis.publish(self._channel, message)
        except (RedisError, OSError, TimeoutError) as exc:
            self._not_telling.warn(exc, "other instances forget this change only when their cache entry expires")

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._listening.set()
                    async for message in pubsub.listen():
                        self._apply(message.get("data"))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as exc:
                self._listening.set()
                self._not_hearing.warn(
                    exc, "not hearing other instances' invalidations (cache entries expire); retrying"
                )
                await asyncio.sleep(RETRY_SECONDS)

    def _apply(self, data: object) -> None:
        text = data.decode() if isinstance(data, bytes) else str(data)
        kind, _, raw_id = text.partition(":")
        forget: dict[str, Callable[[uuid.UUID], None]] = {
            "user": super().invalidate_user,
            "key": super().invalidate_key,
        }
        try:
            forget[kind](uuid.UUID(raw_id))
        except (KeyError, ValueError):
            logger.warning("ignored a malformed invalidation message")

"""Logged-out sessions, shared by every instance on one Redis, and checked in memory on the hot path.

A revocation is written as a key that expires with the longest-lived access token
(``<prefix>revoked-session:<session id>``) and published on a channel. Each instance keeps what it hears in memory,
so checking a token costs no round trip. Pub/sub keeps nothing for a listener that is away, so after every
(re)subscription the listener reads the keys still there: an instance that starts, or comes back after an outage,
knows every revocation its tokens could still meet.

While Redis is unreachable, the hot path goes on answering from memory in either failure mode: an instance knows
every log-out it heard before and every one made through itself, and nobody can write a revocation to a Redis that
is down, so what it can miss is only a log-out on an instance that still reached Redis while this one did not (a
partition); it catches up from the keys when it is back. Refusing every session instead would turn a Redis outage
into an outage for every logged-in user, which even the ``closed`` mode does not ask (the usage report, say, still
answers). A log-out whose revocation cannot be written answers 503 in ``closed`` mode (it can be retried: the
session is already revoked in the database and on this instance) and succeeds with a warning in ``open`` mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from application.degraded import DegradedWarning
from domain.shared.errors import DependencyUnavailable
from infrastructure.memory.session_revocations import InMemorySessionRevocations

CHANNEL = "session-revocations"
KEY = "revoked-session:"
RETRY_SECONDS = 1.0
POLL_SECONDS = 1.0
LOGGER = "switchboard.auth"
_REDIS_ERRORS = (RedisError, OSError, TimeoutError)


class RedisSessionRevocations(InMemorySessionRevocations):
    """``start`` in the running loop begins listening; ``aclose`` stops."""

    def __init__(self, *, ttl_seconds: float, redis: Redis, prefix: str, fail_open: bool) -> None:
        super().__init__(ttl_seconds=ttl_seconds)
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        self._redis = redis
        self._prefix = prefix
        self._fail_open = fail_open
        self._listener: asyncio.Task[None] | None = None
        self._in_sync = False
        self._ready = asyncio.Event()
        self._degraded = DegradedWarning("session revocations", logger=LOGGER)

    @property
    def in_sync(self) -> bool:
        return self._in_sync

    async def revoke(self, session_id: uuid.UUID) -> None:
        await super().revoke(session_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._prefix + KEY + str(session_id), b"1", px=self._ttl_ms)
                pipe.publish(self._prefix + CHANNEL, str(session_id))
                await pipe.execute()
        except _REDIS_ERRORS as exc:
            if not self._fail_open:
                raise DependencyUnavailable(
                    f"session revocations: Redis is unreachable ({type(exc).__name__})"
                ) from exc
            self._degraded.warn(exc, "fail-open: other instances accept the session's access tokens until they expire")

    async def start(self) -> None:
        """Listens from now on (returns once caught up, or after a first failed attempt)."""
        if self._listener is None:
            self._listener = asyncio.ensure_future(self._listen())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), RETRY_SECONDS * 2)

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._prefix + CHANNEL)
                    await self._catch_up()  # after subscribing: nothing published meanwhile is missed
                    self._in_sync = True
                    self._ready.set()
                    await self._receive(pubsub)
            except asyncio.CancelledError:
                raise
            except _REDIS_ERRORS as exc:
                self._in_sync = False
                self._ready.set()
                self._degraded.warn(
                    exc, "log-outs on other instances are not heard until Redis is back (then caught up)"
                )
                await asyncio.sleep(RETRY_SECONDS)

    async def _catch_up(self) -> None:
        async for key in self._redis.scan_iter(match=self._prefix + KEY + "*", count=1000):
            ttl_ms = await self._redis.pttl(key)
            if ttl_ms > 0:
                name = key.decode() if isinstance(key, bytes) else str(key)
                self._apply(name.removeprefix(self._prefix + KEY), ttl_ms / 1000)

    async def _receive(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_SECONDS)
            if message is None:
                await pubsub.ping()  # an idle connection that died is noticed within a poll
            elif message.get("type") == "message":
                self._apply(message.get("data"), self._ttl_ms / 1000)

    def _apply(self, data: object, seconds: float) -> None:
        text = data.decode() if isinstance(data, bytes) else str(data)
        with contextlib.suppress(ValueError):
            self.remember(uuid.UUID(text), seconds)

"""The Redis client the limiter, the spend counter and the cache share, and the translation of its failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from domain.shared.errors import DependencyUnavailable


def create_redis(url: str, *, timeout_seconds: float, max_connections: int = 64) -> Redis:
    """A pooled client with short timeouts: a Redis that is down must cost a request milliseconds, not seconds.

    The pool blocks (up to a second) when every connection is busy, rather than failing the call: a burst of
    requests queues for a connection instead of being treated as Redis being down. One immediate retry covers a
    pooled connection that died with a Redis restart; more would only delay the fail-open or fail-closed answer.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=max(1.0, timeout_seconds),
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
    return Redis.from_pool(pool)


@asynccontextmanager
async def translated_errors(what: str) -> AsyncIterator[None]:
    """Redis failures become ``DependencyUnavailable``, which the use cases know how to handle."""
    try:
        yield
    except (TimeoutError, RedisError, OSError) as exc:
        raise DependencyUnavailable(f"{what}: Redis is unreachable ({type(exc).__name__})") from exc

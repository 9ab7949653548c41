"""The log-in throttle's contract, against both adapters: in memory and on Redis.

Windows are real time on Redis (its keys' TTLs) and the fake clock's in memory; ``Throttles.wait`` moves whichever
time the adapter reads, so one test runs on both.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from domain.auth.ports import LoginAttempt, LoginThrottle
from infrastructure.memory.login_throttle import InMemoryLoginThrottle
from infrastructure.redis.client import create_redis
from infrastructure.redis.login_throttle import RedisLoginThrottle, keyed_digest
from tests.fakes.clock import FakeClock

pytestmark = pytest.mark.contract

ADA = LoginAttempt(account="ada@example.com", client_address="203.0.113.9")
SECRET = "a server secret of at least thirty-two bytes"


@dataclass
class Throttles:
    """Makes throttles of one adapter; ``wait(seconds)`` lets that much of the adapter's time pass."""

    make: Callable[..., LoginThrottle]
    wait: Callable[[float], Awaitable[None]]
    redis: Redis | None = None
    prefix: str = ""


def _limits(max_per_account: int = 3, max_per_address: int = 10, window_seconds: float = 900) -> dict[str, float]:
    return {"max_per_account": max_per_account, "max_per_address": max_per_address, "window_seconds": window_seconds}


@asynccontextmanager
async def _throttles(backend: tuple[str, str] | None) -> AsyncIterator[Throttles]:
    if backend is None:
        clock = FakeClock()

        async def advance(seconds: float) -> None:
            clock.advance(seconds=seconds)

        yield Throttles(make=lambda **kw: InMemoryLoginThrottle(clock=clock, **_limits(**kw)), wait=advance)  # type: ignore[arg-type]
        return
    url, prefix = backend
    client = create_redis(url, timeout_seconds=2)
    try:
        yield Throttles(
            make=lambda **kw: RedisLoginThrottle(client, prefix=prefix, secret=SECRET, **_limits(**kw)),  # type: ignore[arg-type]
            wait=asyncio.sleep,
            redis=client,
            prefix=prefix,
        )
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str] | None:
    """``None`` in memory, else the test Redis and this test's key prefix (only its keys are deleted afterwards)."""
    if request.param == "memory":
        return None
    return request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")


@pytest.fixture
async def throttles(backend: tuple[str, str] | None) -> AsyncIterator[Throttles]:
    async with _throttles(backend) as made:
        yield made


@pytest.fixture
async def on_redis(redis_url: str, redis_prefix: str) -> AsyncIterator[Throttles]:
    async with _throttles((redis_url, redis_prefix)) as made:
        yield made


async def fail(throttle: LoginThrottle, attempt: LoginAttempt, times: int) -> None:
    for _ in range(times):
        await throttle.record_failure(attempt)


async def test_an_account_is_refused_at_its_limit_for_the_rest_of_the_window(throttles: Throttles) -> None:
    throttle = throttles.make(max_per_account=3)
    await fail(throttle, ADA, 2)
    assert await throttle.retry_after(ADA) is None
    await fail(throttle, ADA, 1)
    assert await throttle.retry_after(ADA) == pytest.approx(900, abs=1)
    other_address = LoginAttempt(account=ADA.account, client_address="198.51.100.1")
    assert await throttle.retry_after(other_address) == pytest.approx(900, abs=1)  # per account, from anywhere
    assert await throttle.retry_after(LoginAttempt(account="bob@example.com")) is None


async def test_the_window_opens_at_the_first_failure_and_is_not_extended(throttles: Throttles) -> None:
    throttle = throttles.make(max_per_account=2, window_seconds=1.2)
    await fail(throttle, ADA, 1)
    await throttles.wait(0.6)
    await fail(throttle, ADA, 1)
    wait = await throttle.retry_after(ADA)
    assert wait is not None
    assert wait == pytest.approx(0.6, abs=0.25)  # what is left of the first failure's window
    await throttles.wait(wait + 0.1)
    assert await throttle.retry_after(ADA) is None
    await fail(throttle, ADA, 1)  # a new window, counting from one
    assert await throttle.retry_after(ADA) is None


async def test_one_address_is_refused_at_its_limit_whatever_the_account(throttles: Throttles) -> None:
    throttle = throttles.make(max_per_account=100, max_per_address=5)
    for n in range(5):
        await throttle.record_failure(LoginAttempt(account=f"user{n}@example.com", client_address="203.0.113.9"))
    assert await throttle.retry_after(LoginAttempt(account="fresh@example.com", client_address="203.0.113.9"))
    assert await throttle.retry_after(LoginAttempt(account="fresh@example.com", client_address="203.0.113.10")) is None
    assert await throttle.retry_after(LoginAttempt(account="fresh@example.com")) is None  # no address: not counted


async def test_a_success_resets_the_account_but_not_the_address(throttles: Throttles) -> None:
    throttle = throttles.make(max_per_account=3, max_per_address=4)
    await fail(throttle, ADA, 3)
    await throttle.record_success(ADA)
    assert await throttle.retry_after(LoginAttempt(account=ADA.account)) is None
    await fail(throttle, LoginAttempt(account="bob@example.com", client_address=ADA.client_address), 1)
    assert await throttle.retry_after(LoginAttempt(account="carol@example.com", client_address=ADA.client_address))


async def test_throttles_sharing_a_redis_count_together(on_redis: Throttles) -> None:
    """Two instances on one Redis (in memory, each process counts on its own)."""
    one, two = on_redis.make(max_per_account=4), on_redis.make(max_per_account=4)
    await asyncio.gather(*(throttle.record_failure(ADA) for throttle in (one, two, one)))
    assert await two.retry_after(ADA) is None
    await two.record_failure(ADA)
    assert await one.retry_after(ADA) is not None
    assert await two.retry_after(ADA) is not None


async def test_redis_keys_hold_neither_the_email_nor_the_address_and_all_expire(on_redis: Throttles) -> None:
    redis, prefix = on_redis.redis, on_redis.prefix
    assert redis is not None
    throttle = on_redis.make(window_seconds=60)
    await fail(throttle, ADA, 2)
    keys = [key.decode() async for key in redis.scan_iter(match=prefix + "*")]
    assert len(keys) == 2
    for key in keys:
        assert key.startswith(prefix + "login:")
        assert "ada" not in key
        assert "example.com" not in key
        assert "203.0.113.9" not in key
        assert 0 < await redis.pttl(key) <= 60_000


async def test_redis_keys_are_keyed_digests_that_a_guessed_email_does_not_reveal(on_redis: Throttles) -> None:
    """Anyone reading Redis could hash a guessed email; without the server secret they cannot find its key."""
    redis, prefix = on_redis.redis, on_redis.prefix
    assert redis is not None
    await on_redis.make().record_failure(ADA)
    keys = {key.decode() async for key in redis.scan_iter(match=prefix + "*")}
    plain = {hashlib.sha256(value.encode()).hexdigest() for value in (ADA.account, str(ADA.client_address))}
    assert not any(digest in key for key in keys for digest in plain)
    assert keys == {
        f"{prefix}login:account:{keyed_digest(SECRET, 'account', ADA.account)}",
        f"{prefix}login:address:{keyed_digest(SECRET, 'address', str(ADA.client_address))}",
    }
    other_secret = RedisLoginThrottle(redis, prefix=prefix, secret="x" * 32, **_limits(max_per_account=1))  # type: ignore[arg-type]
    assert await other_secret.retry_after(LoginAttempt(account=ADA.account)) is None  # another secret, other keys

"""Log-in throttling: per account and per address, the same for unknown accounts, reset by a success; and never
switched off by its shared store being down."""

from __future__ import annotations

from dataclasses import replace

import pytest

from application.auth import resilient_throttle
from application.auth.log_in import BAD_CREDENTIALS, THROTTLED
from application.auth.resilient_throttle import ResilientLoginThrottle
from domain.auth.ports import LoginAttempt
from domain.shared.errors import DependencyUnavailable, RateLimited, Unauthenticated
from infrastructure.memory import login_throttle
from infrastructure.memory.login_throttle import InMemoryLoginThrottle
from tests.fakes.auth import EVERY_OPERATION, OutageLoginThrottle
from tests.fakes.clock import FakeClock
from tests.unit.conftest import PASSWORD, Env

pytestmark = pytest.mark.unit
WRONG = "not the password at all"


async def fail(env: Env, email: str, times: int, address: str | None = "10.0.0.1") -> None:
    for _ in range(times):
        with pytest.raises(Unauthenticated, match=BAD_CREDENTIALS):
            await env.log_in(email, WRONG, address)


async def test_an_account_is_throttled_after_its_limit_even_with_the_right_password(env: Env) -> None:
    await env.register("ada@example.com")
    await fail(env, "ada@example.com", 5)
    with pytest.raises(RateLimited, match=THROTTLED) as caught:
        await env.log_in("ada@example.com", PASSWORD, "10.0.0.2")  # another address does not help
    assert caught.value.retry_after_seconds == pytest.approx(900)
    env.clock.advance(seconds=899)
    with pytest.raises(RateLimited) as caught:
        await env.log_in("ADA@example.com ", PASSWORD)  # nor another spelling of the same account
    assert caught.value.retry_after_seconds == pytest.approx(1)
    env.clock.advance(seconds=1)
    assert (await env.log_in("ada@example.com", PASSWORD)).access_token


async def test_unknown_accounts_are_throttled_exactly_like_known_ones(env: Env) -> None:
    await fail(env, "nobody@example.com", 5)
    with pytest.raises(RateLimited):
        await env.log_in("nobody@example.com", WRONG)


async def test_a_success_resets_the_account_count(env: Env) -> None:
    await env.register("ada@example.com")
    await fail(env, "ada@example.com", 4)
    await env.log_in("ada@example.com", PASSWORD)
    await fail(env, "ada@example.com", 4)  # four more are allowed again
    assert (await env.log_in("ada@example.com", PASSWORD)).access_token


async def test_one_address_spraying_many_accounts_is_throttled(env: Env) -> None:
    for n in range(20):
        await fail(env, f"user{n}@example.com", 1, address="203.0.113.9")
    with pytest.raises(RateLimited):
        await env.log_in("fresh@example.com", WRONG, "203.0.113.9")
    await env.register("ada@example.com")
    assert (await env.log_in("ada@example.com", PASSWORD, "198.51.100.1")).access_token  # others are unaffected


async def test_the_throttle_forgets_expired_windows_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(login_throttle, "MAX_TRACKED_KEYS", 10)
    clock = FakeClock()
    throttle = InMemoryLoginThrottle(clock=clock, max_per_account=1, max_per_address=1000, window_seconds=60)
    for n in range(10):
        await throttle.record_failure(LoginAttempt(account=f"a{n}"))
    clock.advance(seconds=61)
    await throttle.record_failure(LoginAttempt(account="new"))
    assert len(throttle._windows) == 1
    for n in range(20):  # full of live windows: the oldest go first, the size stays bounded
        await throttle.record_failure(LoginAttempt(account=f"b{n}"))
    assert len(throttle._windows) <= 10
    assert await throttle.retry_after(LoginAttempt(account="b19")) is not None


# --- the shared store (Redis) unavailable: never without a throttle ---------------------------------------------


def shared_store(env: Env, *, fail_open: bool) -> tuple[Env, OutageLoginThrottle]:
    """``env`` with a shared throttle that can go down, wired as the container wires the Redis one."""
    shared = OutageLoginThrottle(
        InMemoryLoginThrottle(clock=env.clock, max_per_account=5, max_per_address=20, window_seconds=900)
    )
    local = InMemoryLoginThrottle(clock=env.clock, max_per_account=5, max_per_address=20, window_seconds=900)
    throttle = ResilientLoginThrottle(shared=shared, local=local if fail_open else None)
    return replace(env, throttle=throttle), shared


async def test_fail_closed_refuses_every_log_in_while_the_store_is_down(env: Env) -> None:
    env, shared = shared_store(env, fail_open=False)
    await env.register("ada@example.com")
    shared.down = EVERY_OPERATION
    for password in (WRONG, PASSWORD):
        with pytest.raises(DependencyUnavailable):
            await env.log_in("ada@example.com", password)
    shared.down = frozenset({"record_failure"})  # down between the check and the count
    with pytest.raises(DependencyUnavailable):
        await env.log_in("ada@example.com", WRONG)
    shared.down = frozenset()
    assert (await env.log_in("ada@example.com", PASSWORD)).access_token


async def test_fail_open_counts_in_process_while_the_store_is_down_and_warns(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env, shared = shared_store(env, fail_open=True)
    await env.register("ada@example.com")
    shared.down = EVERY_OPERATION
    with caplog.at_level("WARNING", logger=resilient_throttle.LOGGER):
        await fail(env, "ada@example.com", 5)
    with pytest.raises(RateLimited):
        await env.log_in("ada@example.com", PASSWORD)  # still throttled: the count went on in process
    [warning] = [r for r in caplog.records if r.name == resilient_throttle.LOGGER]  # one per interval, not per call
    assert "login throttle unavailable" in warning.getMessage()
    assert warning.__dict__["dependency"] == "login throttle"
    assert "fail-open" in warning.__dict__["consequence"]


async def test_counts_made_during_an_outage_still_apply_after_it(env: Env) -> None:
    env, shared = shared_store(env, fail_open=True)
    await env.register("ada@example.com")
    shared.down = EVERY_OPERATION
    await fail(env, "ada@example.com", 5)
    shared.down = frozenset()  # the store is back, and knows nothing of those failures
    with pytest.raises(RateLimited) as caught:
        await env.log_in("ada@example.com", PASSWORD)
    assert caught.value.retry_after_seconds == pytest.approx(900)
    env.clock.advance(seconds=900)
    assert (await env.log_in("ada@example.com", PASSWORD)).access_token


async def test_with_the_store_up_its_counts_decide(env: Env) -> None:
    env, shared = shared_store(env, fail_open=True)
    await env.register("ada@example.com")
    await shared.inner.record_failure(LoginAttempt(account="ada@example.com"))  # e.g. by another instance
    await fail(env, "ada@example.com", 4)
    with pytest.raises(RateLimited):
        await env.log_in("ada@example.com", PASSWORD)


@pytest.mark.parametrize("fail_open", [True, False])
async def test_a_reset_that_cannot_reach_the_store_does_not_undo_a_good_log_in(env: Env, fail_open: bool) -> None:
    env, shared = shared_store(env, fail_open=fail_open)
    await env.register("ada@example.com")
    shared.down = frozenset({"record_success"})
    assert (await env.log_in("ada@example.com", PASSWORD)).access_token

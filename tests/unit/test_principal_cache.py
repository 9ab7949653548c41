from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from application.admin.update_user import UpdateUser, UpdateUserCommand
from application.auth.authenticate import Authenticate
from application.auth.create_api_key import CreateApiKey, CreateApiKeyCommand
from application.auth.principal_cache import PrincipalCache
from application.auth.revoke_api_key import RevokeApiKey, RevokeApiKeyCommand
from domain.auth.model import Principal, Role, Scope
from domain.shared.errors import Unauthenticated
from tests.unit.conftest import Env

pytestmark = pytest.mark.unit


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def cache(ticker: Ticker) -> PrincipalCache:
    return PrincipalCache(ttl_seconds=5, monotonic=ticker)


async def _key(env: Env, principal: Principal, **kwargs: object) -> str:
    use_case = CreateApiKey(uow=env.uow, clock=env.clock, max_keys_per_user=10)
    values: dict[str, object] = {"principal": principal, "name": "k", "scopes": frozenset({Scope.CHAT})}
    values.update(kwargs)
    return (await use_case.execute(CreateApiKeyCommand(**values))).plaintext  # type: ignore[arg-type]


def _auth(env: Env, cache: PrincipalCache) -> Authenticate:
    return Authenticate(uow=env.uow, tokens=env.tokens, sessions=env.sessions, clock=env.clock, cache=cache)


async def test_a_cached_key_skips_the_database_until_the_ttl_runs_out(
    env: Env, cache: PrincipalCache, ticker: Ticker
) -> None:
    ada = await env.principal("ada@example.com")
    key = await _key(env, ada)
    auth = _auth(env, cache)
    first = await auth.execute(key)
    commits = env.uow.commits
    # The key row is deleted behind the cache's back: only a database read would notice.
    async with env.uow() as uow:
        stored = await uow.api_keys.find(first.api_key_id)  # type: ignore[arg-type]
        assert stored is not None
        stored.revoked_at = env.clock.now()
        await uow.api_keys.update(stored)
        await uow.commit()
    assert await auth.execute(key) == first  # answered from memory
    assert env.uow.commits == commits + 1  # the revocation's own commit, no last-used write
    ticker.now += 6
    with pytest.raises(Unauthenticated):
        await auth.execute(key)


async def test_revoking_through_the_use_case_takes_effect_at_once(env: Env, cache: PrincipalCache) -> None:
    ada = await env.principal("ada@example.com")
    key = await _key(env, ada)
    auth = _auth(env, cache)
    principal = await auth.execute(key)
    await RevokeApiKey(uow=env.uow, clock=env.clock, principals=cache).execute(
        RevokeApiKeyCommand(ada, principal.api_key_id)  # type: ignore[arg-type]
    )
    with pytest.raises(Unauthenticated):
        await auth.execute(key)


async def test_deactivating_a_user_takes_effect_at_once_for_tokens_and_keys(env: Env, cache: PrincipalCache) -> None:
    root = await env.principal("root@example.com", Role.ADMIN)
    ada = await env.principal("ada@example.com")
    key = await _key(env, ada)
    token = (await env.log_in("ada@example.com")).access_token
    auth = _auth(env, cache)
    await auth.execute(key)
    await auth.execute(token)
    await UpdateUser(uow=env.uow, clock=env.clock, principals=cache).execute(
        UpdateUserCommand(principal=root, user_id=ada.user_id, is_active=False)
    )
    for credential in (key, token):
        with pytest.raises(Unauthenticated):
            await auth.execute(credential)


async def test_a_key_expiring_while_cached_is_refused(env: Env, cache: PrincipalCache) -> None:
    ada = await env.principal("ada@example.com")
    key = await _key(env, ada, expires_at=env.clock.now() + timedelta(seconds=30))
    auth = _auth(env, cache)
    await auth.execute(key)
    env.clock.advance(seconds=31)
    with pytest.raises(Unauthenticated):
        await auth.execute(key)


def test_the_cache_is_bounded(ticker: Ticker) -> None:
    cache = PrincipalCache(ttl_seconds=5, max_entries=2, monotonic=ticker)
    principals = [Principal(user_id=uuid.uuid4(), role=Role.MEMBER) for _ in range(3)]
    for index, principal in enumerate(principals):
        cache.put(f"t{index}", principal)
    assert cache.get("t0") is None
    assert cache.get("t2") is not None

from __future__ import annotations

from datetime import timedelta

import pytest

from application.auth.create_api_key import CreateApiKey, CreateApiKeyCommand
from application.auth.list_api_keys import ListApiKeys
from application.auth.log_in import BAD_CREDENTIALS
from application.auth.log_out import LogOut, LogOutCommand
from application.auth.refresh_session import RefreshSession, RefreshSessionCommand
from application.auth.register_user import RegisterUser, RegisterUserCommand
from application.auth.revoke_api_key import RevokeApiKey, RevokeApiKeyCommand
from domain.auth.api_keys import KEY_PREFIX
from domain.auth.errors import WeakPassword
from domain.auth.model import Principal, Role, Scope
from domain.shared.errors import Conflict, Forbidden, NotFound, RuleViolation, Unauthenticated
from infrastructure.security.passwords import Argon2PasswordHasher
from tests.unit.conftest import COMMON_PASSWORDS, PASSWORD, Env

pytestmark = pytest.mark.unit


async def test_register_normalises_email_and_hashes_password(env: Env) -> None:
    user = await env.register("  Ada@Example.COM ")
    assert user.email == "ada@example.com"
    assert user.role is Role.MEMBER
    assert PASSWORD not in user.password_hash
    assert await env.hasher.verify(user.password_hash, PASSWORD)
    assert env.uow.commits == 1


async def test_register_twice_is_a_conflict_and_stores_nothing_more(env: Env) -> None:
    await env.register("ada@example.com")
    with pytest.raises(Conflict):
        await env.register("ADA@example.com")
    assert env.uow.commits == 1


@pytest.mark.parametrize(
    "password",
    [
        "short",
        " " * 12,
        "x" * 1025,
        "password1234",  # on the list of breached passwords
        " PassWord1234 ",  # whatever its case and blanks
        "qwertyuiop123",
        "123456789012",  # a run
        "abcabcabcabc",  # a repetition
        "ada.lovelace@example.com",  # the email
        "ADA.LOVELACE@example.com",
        "ada.lovelace",  # its local part
        "ada.lovelace2024!",  # give or take a trailing number
    ],
)
async def test_register_refuses_weak_passwords(env: Env, password: str) -> None:
    use_case = RegisterUser(uow=env.uow, hasher=env.hasher, common_passwords=COMMON_PASSWORDS, clock=env.clock)
    with pytest.raises(WeakPassword) as refused:
        await use_case.execute(RegisterUserCommand(email="Ada.Lovelace@example.com", password=password))
    assert isinstance(refused.value, RuleViolation)  # a 422 like every broken rule
    assert env.uow.commits == 0


@pytest.mark.parametrize("password", [PASSWORD, "ada lovelace's engine", "1234 5678 9012 x", "example.com rocks"])
async def test_register_accepts_passwords_that_are_long_and_uncommon(env: Env, password: str) -> None:
    use_case = RegisterUser(uow=env.uow, hasher=env.hasher, common_passwords=COMMON_PASSWORDS, clock=env.clock)
    user = await use_case.execute(RegisterUserCommand(email="ada.lovelace@example.com", password=password))
    assert await env.hasher.verify(user.password_hash, password)


async def test_log_in_gives_tokens_that_authenticate(env: Env) -> None:
    user = await env.register("ada@example.com")
    pair = await env.log_in("ada@example.com")
    principal = await env.authenticate().execute(pair.access_token)
    assert principal.user_id == user.id
    assert principal.api_key_id is None
    assert Scope.ADMIN not in principal.scopes
    assert 0 < pair.expires_in <= 900


@pytest.mark.parametrize(
    ("email", "password"), [("ada@example.com", "wrong password!!"), ("nobody@example.com", PASSWORD)]
)
async def test_log_in_failures_look_the_same(env: Env, email: str, password: str) -> None:
    await env.register("ada@example.com")
    with pytest.raises(Unauthenticated) as caught:
        await env.log_in(email, password)
    assert caught.value.detail == BAD_CREDENTIALS


async def test_log_in_rehashes_when_parameters_rise(env: Env) -> None:
    user = await env.register("ada@example.com")
    env.hasher = Argon2PasswordHasher(time_cost=2, memory_kib=16, parallelism=1)
    await env.log_in("ada@example.com")
    async with env.uow() as uow:
        stored = await uow.users.get(user.id)
    assert stored.password_hash != user.password_hash
    assert not env.hasher.needs_rehash(stored.password_hash)


async def test_refresh_token_is_not_an_access_token(env: Env) -> None:
    await env.register("ada@example.com")
    pair = await env.log_in("ada@example.com")
    with pytest.raises(Unauthenticated):
        await env.authenticate().execute(pair.refresh_token)


async def test_refresh_rotates_and_reuse_revokes_the_family(env: Env) -> None:
    await env.register("ada@example.com")
    first = await env.log_in("ada@example.com")
    refresh = RefreshSession(uow=env.uow, tokens=env.tokens, sessions=env.sessions, clock=env.clock)
    second = await refresh.execute(RefreshSessionCommand(first.refresh_token))
    assert second.refresh_token != first.refresh_token
    with pytest.raises(Unauthenticated):  # the spent token again: a thief or a replay
        await refresh.execute(RefreshSessionCommand(first.refresh_token))
    with pytest.raises(Unauthenticated):  # and the legitimate newer token dies with its family
        await refresh.execute(RefreshSessionCommand(second.refresh_token))


async def test_other_sessions_survive_a_family_revocation(env: Env) -> None:
    await env.register("ada@example.com")
    laptop = await env.log_in("ada@example.com")
    phone = await env.log_in("ada@example.com")
    await LogOut(uow=env.uow, tokens=env.tokens, sessions=env.sessions, clock=env.clock).execute(
        LogOutCommand(laptop.refresh_token)
    )
    refresh = RefreshSession(uow=env.uow, tokens=env.tokens, sessions=env.sessions, clock=env.clock)
    with pytest.raises(Unauthenticated):
        await refresh.execute(RefreshSessionCommand(laptop.refresh_token))
    assert (await refresh.execute(RefreshSessionCommand(phone.refresh_token))).access_token


async def test_a_logged_out_sessions_access_token_stops_working_at_once(env: Env) -> None:
    await env.register("ada@example.com")
    laptop = await env.log_in("ada@example.com")
    phone = await env.log_in("ada@example.com")
    authenticate = env.authenticate()
    assert (await authenticate.execute(laptop.access_token)).user_id
    log_out = LogOut(uow=env.uow, tokens=env.tokens, sessions=env.sessions, clock=env.clock)
    await log_out.execute(LogOutCommand(laptop.refresh_token))
    with pytest.raises(Unauthenticated):
        await authenticate.execute(laptop.access_token)
    assert (await authenticate.execute(phone.access_token)).user_id  # another session of the same user lives on
    await log_out.execute(LogOutCommand(laptop.refresh_token))  # twice: no error


async def test_access_tokens_of_a_refreshed_session_die_with_it(env: Env) -> None:
    await env.register("ada@example.com")
    first = await env.log_in("ada@example.com")
    refresh = RefreshSession(uow=env.uow, tokens=env.tokens, sessions=env.sessions, clock=env.clock)
    second = await refresh.execute(RefreshSessionCommand(first.refresh_token))
    assert (
        env.tokens.decode_access(second.access_token).session_id
        == env.tokens.decode_access(first.access_token).session_id
    )
    with pytest.raises(Unauthenticated):  # a replay: the family is revoked, and so are its access tokens
        await refresh.execute(RefreshSessionCommand(first.refresh_token))
    for pair in (first, second):
        with pytest.raises(Unauthenticated):
            await env.authenticate().execute(pair.access_token)


async def test_expired_access_token_is_refused(env: Env) -> None:
    await env.register("ada@example.com")
    env.clock.advance(hours=-2)
    pair = await env.log_in("ada@example.com")
    with pytest.raises(Unauthenticated):
        await env.authenticate().execute(pair.access_token)


async def test_deactivated_user_cannot_log_in_or_authenticate(env: Env) -> None:
    user = await env.register("ada@example.com")
    pair = await env.log_in("ada@example.com")
    async with env.uow() as uow:
        stored = await uow.users.get(user.id)
        stored.is_active = False
        await uow.users.update(stored)
        await uow.commit()
    with pytest.raises(Unauthenticated):
        await env.authenticate().execute(pair.access_token)
    with pytest.raises(Unauthenticated):
        await env.log_in("ada@example.com")


async def _create_key(env: Env, principal: Principal, **kwargs: object):  # type: ignore[no-untyped-def]
    use_case = CreateApiKey(uow=env.uow, clock=env.clock, max_keys_per_user=3)
    values: dict[str, object] = {"principal": principal, "name": "ci", "scopes": frozenset({Scope.CHAT})}
    values.update(kwargs)
    return await use_case.execute(CreateApiKeyCommand(**values))  # type: ignore[arg-type]


async def test_api_key_is_shown_once_and_stored_as_hash(env: Env) -> None:
    principal = await env.principal("ada@example.com")
    created = await _create_key(env, principal)
    assert created.plaintext.startswith(KEY_PREFIX)
    assert len(created.plaintext) >= len(KEY_PREFIX) + 43  # 32 random bytes, base64url
    assert created.plaintext not in (created.key.key_hash, created.key.prefix)
    assert created.plaintext.startswith(created.key.prefix)
    authenticated = await env.authenticate().execute(created.plaintext)
    assert authenticated.api_key_id == created.key.id
    assert authenticated.scopes == frozenset({Scope.CHAT})


async def test_api_key_last_used_is_recorded_at_most_once_a_minute(env: Env) -> None:
    principal = await env.principal("ada@example.com")
    created = await _create_key(env, principal)
    auth = env.authenticate()
    await auth.execute(created.plaintext)
    commits = env.uow.commits
    await auth.execute(created.plaintext)
    assert env.uow.commits == commits
    env.clock.advance(minutes=2)
    await auth.execute(created.plaintext)
    assert env.uow.commits == commits + 1


async def test_revoked_and_expired_keys_are_refused(env: Env) -> None:
    principal = await env.principal("ada@example.com")
    revoked = await _create_key(env, principal)
    expiring = await _create_key(env, principal, expires_at=env.clock.now() + timedelta(hours=1))
    await RevokeApiKey(uow=env.uow, clock=env.clock).execute(RevokeApiKeyCommand(principal, revoked.key.id))
    with pytest.raises(Unauthenticated):
        await env.authenticate().execute(revoked.plaintext)
    env.clock.advance(hours=2)
    with pytest.raises(Unauthenticated):
        await env.authenticate().execute(expiring.plaintext)
    with pytest.raises(Unauthenticated):
        await env.authenticate().execute(revoked.plaintext[:-1] + "x")


async def test_someone_elses_key_is_not_found(env: Env) -> None:
    ada = await env.principal("ada@example.com")
    bob = await env.principal("bob@example.com")
    created = await _create_key(env, ada)
    with pytest.raises(NotFound):
        await RevokeApiKey(uow=env.uow, clock=env.clock).execute(RevokeApiKeyCommand(bob, created.key.id))
    assert await ListApiKeys(uow=env.uow).execute(bob) == []
    assert [k.id for k in await ListApiKeys(uow=env.uow).execute(ada)] == [created.key.id]


async def test_keys_cannot_escalate_or_exceed_the_limit(env: Env) -> None:
    member = await env.principal("ada@example.com")
    with pytest.raises(Forbidden):
        await _create_key(env, member, scopes=frozenset({Scope.ADMIN}))
    chat_only = Principal(user_id=member.user_id, role=member.role, scopes=frozenset({Scope.CHAT, Scope.KEYS}))
    with pytest.raises(Forbidden):
        await _create_key(env, chat_only, scopes=frozenset({Scope.USAGE}))
    for _ in range(3):
        await _create_key(env, member)
    with pytest.raises(RuleViolation):
        await _create_key(env, member)


async def test_a_key_loses_admin_scope_when_its_owner_is_demoted(env: Env) -> None:
    admin = await env.principal("root@example.com", Role.ADMIN)
    created = await _create_key(env, admin, scopes=frozenset({Scope.ADMIN, Scope.CHAT}))
    async with env.uow() as uow:
        user = await uow.users.get(admin.user_id)
        user.role = Role.MEMBER
        await uow.users.update(user)
        await uow.commit()
    principal = await env.authenticate().execute(created.plaintext)
    assert not principal.is_admin
    assert principal.scopes == frozenset({Scope.CHAT})


async def test_a_key_without_the_keys_scope_cannot_manage_keys(env: Env) -> None:
    member = await env.principal("ada@example.com")
    chat_only = Principal(user_id=member.user_id, role=member.role, scopes=frozenset({Scope.CHAT}))
    with pytest.raises(Forbidden):
        await ListApiKeys(uow=env.uow).execute(chat_only)

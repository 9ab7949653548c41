from __future__ import annotations

import pytest

from application.admin.list_users import ListUsers, ListUsersCommand
from application.admin.update_user import UpdateUser, UpdateUserCommand
from application.auth.refresh_session import RefreshSession, RefreshSessionCommand
from domain.auth.model import Principal, Role, Scope
from domain.shared.errors import Forbidden, NotFound, RuleViolation, Unauthenticated
from domain.shared.ids import new_id
from tests.unit.conftest import Env

pytestmark = pytest.mark.unit


async def test_members_cannot_use_admin_use_cases(env: Env) -> None:
    member = await env.principal("ada@example.com")
    with pytest.raises(Forbidden):
        await ListUsers(uow=env.uow).execute(ListUsersCommand(principal=member))
    with pytest.raises(Forbidden):
        await UpdateUser(uow=env.uow, clock=env.clock).execute(
            UpdateUserCommand(principal=member, user_id=member.user_id, role=Role.ADMIN)
        )


async def test_an_admin_key_without_admin_scope_is_not_admin(env: Env) -> None:
    admin = await env.principal("root@example.com", Role.ADMIN)
    key_principal = Principal(user_id=admin.user_id, role=Role.ADMIN, scopes=frozenset({Scope.CHAT}))
    with pytest.raises(Forbidden):
        await ListUsers(uow=env.uow).execute(ListUsersCommand(principal=key_principal))


async def test_admin_lists_users_oldest_first_with_total(env: Env) -> None:
    admin = await env.principal("root@example.com", Role.ADMIN)
    for name in ("a", "b", "c"):
        env.clock.advance(seconds=1)
        await env.register(f"{name}@example.com")
    page = await ListUsers(uow=env.uow).execute(ListUsersCommand(principal=admin, limit=2, offset=1))
    assert page.total == 4
    assert [u.email for u in page.items] == ["a@example.com", "b@example.com"]


async def test_deactivation_ends_sessions_and_promotion_grants_admin(env: Env) -> None:
    admin = await env.principal("root@example.com", Role.ADMIN)
    ada = await env.register("ada@example.com")
    pair = await env.log_in("ada@example.com")
    update = UpdateUser(uow=env.uow, clock=env.clock)
    promoted = await update.execute(UpdateUserCommand(principal=admin, user_id=ada.id, role=Role.ADMIN))
    assert promoted.role is Role.ADMIN
    assert (await env.authenticate().execute(pair.access_token)).is_admin
    await update.execute(UpdateUserCommand(principal=admin, user_id=ada.id, is_active=False))
    with pytest.raises(Unauthenticated):
        await RefreshSession(uow=env.uow, tokens=env.tokens, sessions=env.sessions, clock=env.clock).execute(
            RefreshSessionCommand(pair.refresh_token)
        )
    with pytest.raises(Unauthenticated):
        await env.authenticate().execute(pair.access_token)


async def test_admins_cannot_demote_or_deactivate_themselves(env: Env) -> None:
    admin = await env.principal("root@example.com", Role.ADMIN)
    update = UpdateUser(uow=env.uow, clock=env.clock)
    with pytest.raises(RuleViolation):
        await update.execute(UpdateUserCommand(principal=admin, user_id=admin.user_id, role=Role.MEMBER))
    with pytest.raises(RuleViolation):
        await update.execute(UpdateUserCommand(principal=admin, user_id=admin.user_id, is_active=False))


async def test_updating_a_missing_user_is_not_found(env: Env) -> None:
    admin = await env.principal("root@example.com", Role.ADMIN)
    with pytest.raises(NotFound):
        await UpdateUser(uow=env.uow, clock=env.clock).execute(
            UpdateUserCommand(principal=admin, user_id=new_id(), role=Role.ADMIN)
        )

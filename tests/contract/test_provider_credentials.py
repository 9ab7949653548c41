"""The provider-credential repository behaves the same on every adapter (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest

from application.unit_of_work import UnitOfWorkFactory
from domain.credentials.model import ProviderCredential, SealedSecret
from domain.shared.errors import Conflict, NotFound
from tests.contract.test_repositories import T0, at, saved_user

pytestmark = pytest.mark.contract


def a_credential(user_id: uuid.UUID, provider: str = "openai", **overrides: Any) -> ProviderCredential:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "provider": provider,
        "sealed": SealedSecret(key_id="k1", ciphertext=b"\x00\x01sealed bytes\xff"),
        "hint": "…abcd",
        "created_at": T0,
        "updated_at": T0,
    }
    return ProviderCredential(**(values | overrides))


async def saved(uow_factory: UnitOfWorkFactory, *credentials: ProviderCredential) -> None:
    async with uow_factory() as uow:
        for credential in credentials:
            await uow.provider_credentials.add(credential)
        await uow.commit()


class TestProviderCredentialRepository:
    async def test_add_find_list_update_delete(self, uow_factory: UnitOfWorkFactory) -> None:
        ada, bob = await saved_user(uow_factory), await saved_user(uow_factory)
        openai, anthropic = a_credential(ada.id), a_credential(ada.id, "anthropic")
        await saved(uow_factory, openai, anthropic, a_credential(bob.id))
        async with uow_factory() as uow:
            assert await uow.provider_credentials.find(ada.id, "openai") == openai
            assert await uow.provider_credentials.find(ada.id, "gemini") is None
            assert [c.provider for c in await uow.provider_credentials.list_by_user(ada.id)] == ["anthropic", "openai"]
            rotated = replace(openai, sealed=SealedSecret(key_id="k2", ciphertext=b"other"), updated_at=at(60))
            await uow.provider_credentials.update(rotated)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.provider_credentials.find(ada.id, "openai") == rotated
            assert await uow.provider_credentials.key_ids() == {"k1", "k2"}
            await uow.provider_credentials.delete(anthropic.id)
            await uow.provider_credentials.delete(anthropic.id)  # twice is fine
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.provider_credentials.find(ada.id, "anthropic") is None
            assert len(await uow.provider_credentials.list_by_user(bob.id)) == 1

    async def test_one_per_user_and_provider(self, uow_factory: UnitOfWorkFactory) -> None:
        ada = await saved_user(uow_factory)
        await saved(uow_factory, a_credential(ada.id))
        async with uow_factory() as uow:
            with pytest.raises(Conflict):
                await uow.provider_credentials.add(a_credential(ada.id))
            await uow.provider_credentials.add(a_credential(ada.id, "gemini"))  # the transaction is still usable
            await uow.commit()
        async with uow_factory() as uow:
            assert len(await uow.provider_credentials.list_by_user(ada.id)) == 2

    async def test_update_of_a_missing_one_is_not_found(self, uow_factory: UnitOfWorkFactory) -> None:
        ada = await saved_user(uow_factory)
        async with uow_factory() as uow:
            with pytest.raises(NotFound):
                await uow.provider_credentials.update(a_credential(ada.id))

    async def test_pages_every_users_by_id(self, uow_factory: UnitOfWorkFactory) -> None:
        users = [await saved_user(uow_factory) for _ in range(3)]
        credentials = [a_credential(u.id, p) for u in users for p in ("openai", "anthropic")]
        await saved(uow_factory, *credentials)
        async with uow_factory() as uow:
            first = await uow.provider_credentials.list_page(after=None, limit=4)
            rest = await uow.provider_credentials.list_page(after=first[-1].id, limit=4)
        assert [c.id for c in first + rest] == sorted(c.id for c in credentials)

"""Shared set-up of the OWASP API Security Top 10 (2023) suites: the app, users, and a fake upstream provider."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api, api, api_with, make_settings, running_api
from tests.api.test_providers_api import catalog_text, fast_retries
from tests.fakes.upstream import FakeUpstream

__all__ = ["api", "api_on_upstream", "api_with", "upstream"]

OPENAI_KEY = "sk-test-openai-secret-0123456789"
ANTHROPIC_KEY = "sk-ant-test-secret-0123456789"


@pytest.fixture
async def upstream(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeUpstream]:
    monkeypatch.setenv("SB_TEST_OPENAI_KEY", OPENAI_KEY)
    monkeypatch.setenv("SB_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
def api_on_upstream(upstream: FakeUpstream, tmp_path: Path) -> Callable[..., Any]:
    """``async with api_on_upstream(**settings) as api:`` the app with models served by the fake upstream."""
    path = tmp_path / "models.toml"
    path.write_text(catalog_text(upstream.base_url))
    return lambda **overrides: running_api(make_settings(catalog_path=path, **fast_retries(**overrides)))


async def user_with_key(api: Api, email: str, scopes: list[str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """Registers ``email``; returns its access-token and API-key Authorization headers."""
    jwt = await api.user(email)
    body: dict[str, Any] = {"name": "k"} | ({"scopes": scopes} if scopes else {})
    created = await api.http.post("/api/v1/api-keys", json=body, headers=jwt)
    assert created.status_code == 201, created.text
    return jwt, {"Authorization": f"Bearer {created.json()['key']}"}


async def conversation(api: Api, headers: dict[str, str], **body: Any) -> str:
    created = await api.http.post("/api/v1/conversations", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])

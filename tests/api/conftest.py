from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from application.auth.register_user import RegisterUserCommand
from domain.auth.model import Role
from infrastructure.settings import Settings
from interfaces.http.app import create_app

PASSWORD = "correct horse battery staple"
TEST_SECRET = "test-secret-" + "x" * 32


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": "memory://",
        "jwt_secret": TEST_SECRET,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8,
        "argon2_parallelism": 1,
        "_env_file": None,
        # Never the working directory (the repository): a journal of its own per settings, as on a host.
        "usage_journal_path": Path(tempfile.mkdtemp(prefix="sb-usage-journal-")),
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Api:
    """A client on a running app, with helpers for the steps most tests start with."""

    app: FastAPI
    http: httpx.AsyncClient

    async def register(self, email: str) -> dict[str, Any]:
        response = await self.http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    async def log_in(self, email: str) -> dict[str, Any]:
        response = await self.http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def user(self, email: str) -> dict[str, str]:
        """Registers and logs in; returns the Authorization header."""
        await self.register(email)
        return {"Authorization": f"Bearer {(await self.log_in(email))['access_token']}"}

    async def signed_in(self, email: str) -> dict[str, str]:
        """Registers ``email`` and signs an access token for it without logging in (for when log-in itself is down,
        e.g. Redis in fail-closed mode); returns the Authorization header."""
        container = self.app.state.container
        user = await container.register_user().execute(RegisterUserCommand(email=email, password=PASSWORD))
        return {"Authorization": f"Bearer {container.tokens().issue_access(user, datetime.now(UTC)).token}"}

    async def admin(self, email: str = "root@example.com") -> dict[str, str]:
        container = self.app.state.container
        await container.register_user().execute(RegisterUserCommand(email=email, password=PASSWORD, role=Role.ADMIN))
        return {"Authorization": f"Bearer {(await self.log_in(email))['access_token']}"}


@asynccontextmanager
async def running_api(settings: Settings, app: FastAPI | None = None) -> AsyncIterator[Api]:
    """The app of ``settings`` (or ``app``, built by the caller, e.g. on a container with overrides), running."""
    app = app or create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Api(app=app, http=http)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with running_api(make_settings()) as running:
        yield running


@pytest.fixture
def api_with() -> Callable[..., Any]:
    """For tests that need other settings: ``async with api_with(max_body_bytes=2048) as api:``."""
    return lambda **overrides: running_api(make_settings(**overrides))


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "instance", "code", "request_id"} <= body.keys()
    assert body["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert body["code"] == code
    return body

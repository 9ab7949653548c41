"""Redis round trips of one call on the production path (limits, budgets, the cache and usage on Redis), counted at
redis-py's connection: each packed send is one round trip, a pipeline or a batched script call included.

Today, at concurrency 1, a chat completion makes two, both before its response: the admission (the request's own
requests-per-minute count, which the model-call routes leave to the model call, the budgets' hold and the token
admission: three script calls made at once, which leave as one batched script call) and the settlement (the charge,
the hold's release and the usage record's XADD, one script call: the record is in Redis before the answer leaves).
Two with a budget set as without one. The usage stream's consumer (XREADGROUP, then XACK + XDEL in a MULTI) runs in
the background and is not counted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.connection import AbstractConnection

from tests.api.conftest import make_settings, running_api

pytestmark = pytest.mark.integration

CATALOG = """
default_model = "local"
[models.local]
provider = "local"
upstream_model = "local-echo"
input_usd_per_mtok = 1.0
output_usd_per_mtok = 2.0
"""


BACKGROUND = ("MULTI", "XREADGROUP", "XAUTOCLAIM", "XACK", "XPENDING", "SUBSCRIBE", "PING")


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    sent: list[str] = []
    original = AbstractConnection.send_packed_command

    async def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        parts = command if isinstance(command, list) else [command]
        text = b"".join(p if isinstance(p, bytes) else bytes(p) for p in parts)
        sent.append(" ".join(w.decode(errors="replace")[:60] for w in text.split(b"\r\n")[2:14:2]))
        await original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    yield sent


@pytest.mark.parametrize("budget", [None, "5"], ids=["no budget", "a budget"])
async def test_round_trips_of_one_completion(
    budget: str | None,
    postgres_url: str,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog = tmp_path / "models.toml"
    catalog.write_text(CATALOG)
    settings = make_settings(
        database_url=postgres_url,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        catalog_path=catalog,
        auth_cache_ttl_seconds=60,
        rate_limit_key_rpm=1_000_000,
        rate_limit_user_tpm=1_000_000_000,
    )
    async with running_api(settings) as api:
        jwt = await api.user(f"rt-{uuid.uuid4().hex[:8]}@example.com")
        if budget is not None:
            me = (await api.http.get("/api/v1/users/me", headers=jwt)).json()
            admin = await api.admin(f"root-{uuid.uuid4().hex[:8]}@example.com")
            patched = await api.http.patch(
                f"/api/v1/admin/users/{me['id']}", json={"monthly_budget_usd": budget}, headers=admin
            )
            assert patched.status_code == 200, patched.text
        key = (await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=jwt)).json()["key"]
        auth = {"Authorization": f"Bearer {key}"}
        body = {"model": "local", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.7}
        for _ in range(3):
            assert (await api.http.post("/v1/chat/completions", json=body, headers=auth)).status_code == 200
        with round_trips(monkeypatch) as sent:
            answered = await api.http.post("/v1/chat/completions", json=body, headers=auth)
            at_response = list(sent)
            await api.app.state.container.model_call().drain()
        assert answered.status_code == 200
        request_path = [command for command in at_response if not command.startswith(BACKGROUND)]
        assert len(request_path) == 2, request_path
        assert all(command.startswith("EVALSHA") for command in request_path), request_path
        assert [command for command in sent if not command.startswith(BACKGROUND)] == request_path

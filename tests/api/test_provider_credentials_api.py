"""Provider keys users bring (``/api/v1/provider-credentials``), against the fake upstream: stored after one check
with the provider, listed by hint only, used for that user's calls (and only theirs), never shown or logged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infrastructure.security.credential_keys import new_key
from tests.api.conftest import Api, assert_problem, make_settings, running_api
from tests.fakes import upstream as fake
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.api

OPERATOR_OPENAI = "sk-operator-openai-0000"
OPERATOR_ANTHROPIC = "sk-operator-anthropic-0000"
OPERATOR_GEMINI = "operator-gemini-key-0000"
ADA_OPENAI = "sk-ada-own-openai-key-7a1f"
ADA_GEMINI = "ada-own-gemini-key-42c9"
BASE = "/api/v1/provider-credentials"


def catalog(base: str) -> str:
    return f"""
default_model = "chat"

[models.chat]
provider = "openai"
upstream_model = "gpt-4o-mini"
base_url = "{base}/v1"
api_key_env = "SB_BYOK_OPENAI"
fallbacks = ["backup"]
timeout_seconds = 1

[models.backup]
provider = "anthropic"
upstream_model = "claude-haiku-4-5"
base_url = "{base}"
api_key_env = "SB_BYOK_ANTHROPIC"
timeout_seconds = 1

[models.solo]
provider = "openai"
upstream_model = "gpt-4o-mini"
base_url = "{base}/v1"
api_key_env = "SB_BYOK_OPENAI"
timeout_seconds = 1

[models.gem]
provider = "gemini"
upstream_model = "gemini-2.5-flash"
base_url = "{base}/v1beta"
api_key_env = "SB_BYOK_GEMINI"
timeout_seconds = 1
"""


@pytest.fixture
async def upstream(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeUpstream]:
    monkeypatch.setenv("SB_BYOK_OPENAI", OPERATOR_OPENAI)
    monkeypatch.setenv("SB_BYOK_ANTHROPIC", OPERATOR_ANTHROPIC)
    monkeypatch.setenv("SB_BYOK_GEMINI", OPERATOR_GEMINI)
    async with FakeUpstream(api_key=OPERATOR_OPENAI) as up:
        up.other_keys |= {OPERATOR_ANTHROPIC, OPERATOR_GEMINI, ADA_OPENAI, ADA_GEMINI}
        yield up


def settings_for(tmp_path: Path, base: str, **overrides: Any) -> Any:
    path = tmp_path / "models.toml"
    path.write_text(catalog(base))
    values: dict[str, Any] = {
        "catalog_path": path,
        "credential_keys": new_key(),
        "upstream_backoff_base_seconds": 0.001,
        "upstream_backoff_max_seconds": 0.01,
        "upstream_retry_budget_min_retries": 100,
        **overrides,
    }
    return make_settings(**values)


@pytest.fixture
async def api(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(settings_for(tmp_path, upstream.base_url)) as running:
        yield running


async def chat(api: Api, headers: dict[str, str], model: str = "chat", **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    return await api.http.post("/v1/chat/completions", json=body, headers=headers)


async def usage_by_owner(api: Api, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    await api.app.state.container.usage_recorder().flush()
    body = (await api.http.get("/api/v1/usage", params={"group_by": "key_owner"}, headers=headers)).json()
    return {group["group"]: group for group in body["groups"]}


async def test_a_user_stores_lists_replaces_and_deletes_their_key(api: Api, upstream: FakeUpstream) -> None:
    ada = await api.user("ada@example.com")
    stored = await api.http.put(f"{BASE}/openai", json={"api_key": ADA_OPENAI}, headers=ada)
    assert stored.status_code == 201, stored.text
    assert stored.json()["provider"] == "openai"
    assert stored.json()["hint"] == "…7a1f"
    # Checked once with the provider, with the user's key: its model list.
    check = upstream.last_request
    assert (check.method, check.path, check.api_key) == ("GET", "/v1/models", ADA_OPENAI)

    listed = (await api.http.get(BASE, headers=ada)).json()
    assert [(c["provider"], c["hint"]) for c in listed["items"]] == [("openai", "…7a1f")]
    upstream.other_keys.add("sk-ada-rotated-key-99b0")
    replaced = await api.http.put(f"{BASE}/openai", json={"api_key": "sk-ada-rotated-key-99b0"}, headers=ada)
    assert replaced.status_code == 200
    assert replaced.json()["hint"] == "…99b0"
    assert (await api.http.get(f"{BASE}/openai", headers=ada)).json()["hint"] == "…99b0"

    await chat(api, ada)
    assert upstream.last_request.api_key == "sk-ada-rotated-key-99b0"  # the rotation applies at once
    assert (await api.http.delete(f"{BASE}/openai", headers=ada)).status_code == 204
    assert_problem(await api.http.get(f"{BASE}/openai", headers=ada), 404)
    assert_problem(await api.http.delete(f"{BASE}/openai", headers=ada), 404)
    await chat(api, ada)
    assert upstream.last_request.api_key == OPERATOR_OPENAI  # deleted: the operator's key again, at once


async def test_a_key_the_provider_refuses_is_a_422_and_is_not_stored(api: Api, upstream: FakeUpstream) -> None:
    ada = await api.user("ada@example.com")
    refused = await api.http.put(f"{BASE}/openai", json={"api_key": "sk-not-a-key-of-openai"}, headers=ada)
    body = assert_problem(refused, 422, "provider_key_rejected")
    assert "refused" in body["detail"]
    assert "sk-not-a-key" not in refused.text
    assert (await api.http.get(BASE, headers=ada)).json()["items"] == []


async def test_an_unreachable_provider_is_a_503_and_nothing_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeUpstream() as gone:
        base = gone.base_url  # stopped: nothing listens there any more
    settings = settings_for(tmp_path, base)
    for name in ("SB_BYOK_OPENAI", "SB_BYOK_ANTHROPIC", "SB_BYOK_GEMINI"):
        monkeypatch.setenv(name, "operator-key-0000")
    async with running_api(settings) as api:
        ada = await api.user("ada@example.com")
        unreachable = await api.http.put(f"{BASE}/anthropic", json={"api_key": "sk-ant-ada-0001"}, headers=ada)
        assert_problem(unreachable, 503, "upstream_unavailable")
        assert (await api.http.get(BASE, headers=ada)).json()["items"] == []


@pytest.mark.parametrize("provider", ["bedrock", "azure_openai", "local", "groq", "openai_compatible", "Not-A-Name"])
async def test_providers_a_user_cannot_bring_a_key_for_are_a_400(api: Api, provider: str) -> None:
    ada = await api.user("ada@example.com")
    refused = await api.http.put(f"{BASE}/{provider}", json={"api_key": "some-key-000000"}, headers=ada)
    assert_problem(refused, 400, "provider_not_supported")


async def test_gemini_keys_are_checked_and_used_with_their_own_header(api: Api, upstream: FakeUpstream) -> None:
    ada = await api.user("ada@example.com")
    stored = await api.http.put(f"{BASE}/gemini", json={"api_key": ADA_GEMINI}, headers=ada)
    assert stored.status_code == 201, stored.text
    check = upstream.last_request
    assert (check.method, check.path, check.headers["x-goog-api-key"]) == ("GET", "/v1beta/models", ADA_GEMINI)
    assert (await chat(api, ada, "gem")).status_code == 200
    assert upstream.last_request.headers["x-goog-api-key"] == ADA_GEMINI


async def test_without_an_encryption_key_nothing_is_stored(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with running_api(settings_for(tmp_path, upstream.base_url, credential_keys=None)) as api:
        ada = await api.user("ada@example.com")
        before = len(upstream.requests)
        refused = await api.http.put(f"{BASE}/openai", json={"api_key": ADA_OPENAI}, headers=ada)
        assert_problem(refused, 503, "credential_encryption_unavailable")
        assert len(upstream.requests) == before  # not even checked with the provider
        assert (await api.http.get(BASE, headers=ada)).json()["items"] == []


async def test_an_admin_manages_a_users_keys_and_nobody_else_can(api: Api, upstream: FakeUpstream) -> None:
    admin = await api.admin()
    ada_id = (await api.register("ada@example.com"))["id"]
    ada = {"Authorization": f"Bearer {(await api.log_in('ada@example.com'))['access_token']}"}
    bob = await api.user("bob@example.com")
    path = f"/api/v1/admin/users/{ada_id}/provider-credentials"

    stored = await api.http.put(f"{path}/openai", json={"api_key": ADA_OPENAI}, headers=admin)
    assert stored.status_code == 201, stored.text
    assert [c["hint"] for c in (await api.http.get(BASE, headers=ada)).json()["items"]] == ["…7a1f"]
    assert (await api.http.get(path, headers=admin)).json()["items"][0]["provider"] == "openai"
    assert (await api.http.get(BASE, headers=admin)).json()["items"] == []  # the admin's own: none

    for method in ("GET", "PUT", "DELETE"):
        attempt = await api.http.request(method, f"{path}/openai", json={"api_key": "sk-bob-000000"}, headers=bob)
        assert_problem(attempt, 403)
    unknown = "/api/v1/admin/users/00000000-0000-4000-8000-000000000000/provider-credentials"
    assert_problem(await api.http.get(unknown, headers=admin), 404)
    assert_problem(await api.http.put(f"{unknown}/openai", json={"api_key": ADA_OPENAI}, headers=admin), 404)
    assert (await api.http.delete(f"{path}/openai", headers=admin)).status_code == 204
    assert (await api.http.get(BASE, headers=ada)).json()["items"] == []


async def test_an_api_key_needs_the_keys_scope(api: Api) -> None:
    ada = await api.user("ada@example.com")
    created = await api.http.post("/api/v1/api-keys", json={"name": "chat only", "scopes": ["chat"]}, headers=ada)
    as_key = {"Authorization": f"Bearer {created.json()['key']}"}
    assert_problem(await api.http.get(BASE, headers=as_key), 403)
    assert_problem(await api.http.put(f"{BASE}/openai", json={"api_key": ADA_OPENAI}, headers=as_key), 403)


async def test_a_users_calls_go_out_with_their_key_and_others_with_the_operators(
    api: Api, upstream: FakeUpstream
) -> None:
    ada, bob = await api.user("ada@example.com"), await api.user("bob@example.com")
    assert (await api.http.put(f"{BASE}/openai", json={"api_key": ADA_OPENAI}, headers=ada)).status_code == 201

    assert (await chat(api, ada)).status_code == 200
    assert upstream.last_request.headers["authorization"] == f"Bearer {ADA_OPENAI}"
    assert (await chat(api, bob)).status_code == 200
    assert upstream.last_request.headers["authorization"] == f"Bearer {OPERATOR_OPENAI}"
    streamed = await chat(api, ada, stream=True)
    assert streamed.status_code == 200
    assert "[DONE]" in streamed.text
    assert upstream.last_request.api_key == ADA_OPENAI
    cid = (await api.http.post("/api/v1/conversations", json={"model": "chat"}, headers=ada)).json()["id"]
    posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=ada)
    assert posted.status_code == 201
    assert upstream.last_request.api_key == ADA_OPENAI

    ada_usage, bob_usage = await usage_by_owner(api, ada), await usage_by_owner(api, bob)
    assert ada_usage["user"]["requests"] == 3
    assert "operator" not in ada_usage
    assert ada_usage["user"]["cost_micros"] > 0  # what the call cost on the user's own account
    assert bob_usage["operator"]["requests"] == 1
    assert "user" not in bob_usage


async def test_a_fallback_to_another_provider_uses_the_operators_key(api: Api, upstream: FakeUpstream) -> None:
    ada = await api.user("ada@example.com")
    await api.http.put(f"{BASE}/openai", json={"api_key": ADA_OPENAI}, headers=ada)
    upstream.push(*[fake.server_error(503)] * 3)  # openai down: every retry fails
    answered = await chat(api, ada)
    assert answered.status_code == 200, answered.text
    assert upstream.last_request.path == "/v1/messages"
    assert upstream.last_request.api_key == OPERATOR_ANTHROPIC  # ada brought no Anthropic key
    assert (await usage_by_owner(api, ada))["operator"]["requests"] == 1

    upstream.other_keys.add("sk-ant-ada-own-3c3c")
    stored = await api.http.put(f"{BASE}/anthropic", json={"api_key": "sk-ant-ada-own-3c3c"}, headers=ada)
    assert stored.status_code == 201, stored.text
    upstream.push(*[fake.server_error(503)] * 3)
    assert (await chat(api, ada)).status_code == 200
    assert upstream.last_request.path == "/v1/messages"
    assert upstream.last_request.api_key == "sk-ant-ada-own-3c3c"  # now she did: her key there too
    assert (await usage_by_owner(api, ada))["user"]["requests"] == 1


async def test_a_users_key_refused_later_falls_back_or_says_so(api: Api, upstream: FakeUpstream) -> None:
    ada = await api.user("ada@example.com")
    await api.http.put(f"{BASE}/openai", json={"api_key": ADA_OPENAI}, headers=ada)
    upstream.other_keys.discard(ADA_OPENAI)  # the user revoked it at OpenAI
    fell_back = await chat(api, ada)
    assert fell_back.status_code == 200
    assert upstream.last_request.api_key == OPERATOR_ANTHROPIC
    refused = await chat(api, ada, "solo")  # no fallback: the user is told their key was refused
    assert refused.status_code == 422, refused.text
    assert "your own openai key" in refused.json()["error"]["message"]
    assert ADA_OPENAI not in refused.text


async def ask_fresh(api: Api, headers: dict[str, str]) -> str:
    """One deterministic message in a new conversation (the same request each time); its cache status."""
    cid = (await api.http.post("/api/v1/conversations", json={"model": "chat"}, headers=headers)).json()["id"]
    body = {"content": "hi", "temperature": 0}
    posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json=body, headers=headers)
    assert posted.status_code == 201, posted.text
    return posted.headers["x-switchboard-cache"]


async def test_a_cached_answer_is_paid_by_no_key_and_a_shared_cache_keeps_no_byok_answer(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    for shared in (False, True):
        async with running_api(settings_for(tmp_path, upstream.base_url, cache_shared=shared)) as api:
            ada, bob = await api.user("ada@example.com"), await api.user("bob@example.com")
            await api.http.put(f"{BASE}/openai", json={"api_key": ADA_OPENAI}, headers=ada)
            assert await ask_fresh(api, ada) == "miss"
            assert await ask_fresh(api, ada) == ("miss" if shared else "hit")
            usage = await usage_by_owner(api, ada)
            if shared:  # never stored: each call went out with ada's key, and bob does not get it for free
                assert usage["user"]["requests"] == 2
                assert await ask_fresh(api, bob) == "miss"
                assert upstream.last_request.api_key == OPERATOR_OPENAI
            else:
                assert usage["user"]["requests"] == 1
                assert usage["operator"]["cached_requests"] == 1
                assert usage["operator"]["cost_micros"] == 0


async def test_calls_made_with_a_users_key_are_not_charged_to_budgets(api: Api, upstream: FakeUpstream) -> None:
    admin = await api.admin()
    ada_id = (await api.register("ada@example.com"))["id"]
    ada = {"Authorization": f"Bearer {(await api.log_in('ada@example.com'))['access_token']}"}
    budget = await api.http.patch(f"/api/v1/admin/users/{ada_id}", json={"monthly_budget_usd": "5"}, headers=admin)
    assert budget.status_code == 200, budget.text
    await api.http.put(f"{BASE}/openai", json={"api_key": ADA_OPENAI}, headers=ada)

    async def spent() -> int:
        await api.app.state.container.usage_recorder().flush()
        body = (await api.http.get("/api/v1/usage", headers=ada)).json()
        return int(next(b for b in body["budgets"] if b["scope"] == "user")["spent_micros"])

    assert (await chat(api, ada)).status_code == 200
    assert await spent() == 0
    assert (await api.http.delete(f"{BASE}/openai", headers=ada)).status_code == 204
    assert (await chat(api, ada)).status_code == 200
    assert await spent() > 0  # the operator's key again: charged


async def test_a_users_key_is_never_in_a_response_or_a_log(
    upstream: FakeUpstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "sk-ada-secret-never-shown-5e3d"
    upstream.other_keys.add(secret)
    seen: list[str] = []
    async with running_api(settings_for(tmp_path, upstream.base_url, log_level="DEBUG")) as api:
        ada = await api.user("ada@example.com")
        admin = await api.admin()
        ada_id = (await api.http.get("/api/v1/users/me", headers=ada)).json()["id"]
        responses = [
            await api.http.put(f"{BASE}/openai", json={"api_key": secret}, headers=ada),
            await api.http.put(f"{BASE}/openai", json={"api_key": secret}, headers=ada),
            await api.http.get(BASE, headers=ada),
            await api.http.get(f"{BASE}/openai", headers=ada),
            await api.http.get(f"/api/v1/admin/users/{ada_id}/provider-credentials", headers=admin),
            await api.http.put(f"{BASE}/anthropic", json={"api_key": secret + "x"}, headers=ada),  # refused
            await api.http.put(f"{BASE}/openai", json={"api_key": secret, "extra": 1}, headers=ada),  # invalid
            await chat(api, ada),
            await chat(api, ada, stream=True),
            await api.http.get("/api/v1/usage", params={"group_by": "key_owner"}, headers=ada),
            await api.http.get("/api/v1/admin/usage", params={"group_by": "key_owner"}, headers=admin),
        ]
        upstream.other_keys.discard(secret)
        responses.append(await chat(api, ada, "solo"))  # refused by the provider on a call
        seen = [f"{r.status_code} {r.headers} {r.text}" for r in responses]
    assert [r.status_code for r in responses] == [201, 200, 200, 200, 200, 422, 422, 200, 200, 200, 200, 422]
    logs = capsys.readouterr()
    assert "/api/v1/provider-credentials/openai" in logs.out  # the logs were captured (the access log, at least)
    assert "provider_key_rejected" in logs.out
    for text in [*seen, logs.out, logs.err]:
        assert secret not in text
        assert secret[4:] not in text  # not even without its prefix

"""API7:2023 Server side request forgery: no request can make the gateway call an address of the client's choosing.

Upstream base URLs come only from the operator's catalog; no request schema has a field for one, model names are
looked up (never used as addresses), and upstream redirects are never followed. Provider keys come from the
operator's environment, or, for a user's own calls, from ``/api/v1/provider-credentials``: the one request that
carries a key (``api_key``, encrypted at rest, sent only to the catalog's own base URL for that provider) and names a
provider (a catalog name, never dialled), and it too refuses an address field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import Api, assert_problem
from tests.fakes import upstream as fake
from tests.fakes.upstream import FakeUpstream
from tests.security.conftest import conversation

pytestmark = pytest.mark.api
ADDRESS_LIKE = re.compile(r"url|uri|host|endpoint|base|api_?key|provider|secret|webhook|callback", re.IGNORECASE)
# The operations of the keys users bring: ``api_key`` (the user's own provider key) and ``provider`` (a name).
CREDENTIAL_PATH = "/provider-credentials"
CREDENTIAL_FIELDS = {"api_key", "provider"}
TARGETS = ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:5432/", "file:///etc/passwd", "gopher://x"]


def _request_properties(schema: dict[str, Any]) -> dict[str, set[str]]:
    """Every property of every request body (and every parameter) in the OpenAPI document, by operation."""
    components = schema["components"]["schemas"]
    found: dict[str, set[str]] = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            names = {p["name"] for p in operation.get("parameters", [])}
            for content in operation.get("requestBody", {}).get("content", {}).values():
                ref = content["schema"].get("$ref", "")
                names |= set(components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}))
            found[f"{method.upper()} {path}"] = names
    return found


async def test_no_request_carries_an_address_or_a_provider_credential(api: Api) -> None:
    schema = (await api.http.get("/openapi.json")).json()
    offenders = {
        operation: sorted(
            n
            for n in names
            # an identifier (``api_key_id``: a UUID filter) is not an address or a credential
            if ADDRESS_LIKE.search(n)
            and n.lower() != "authorization"
            and not n.lower().endswith("_id")
            and not (CREDENTIAL_PATH in operation and n in CREDENTIAL_FIELDS)
        )
        for operation, names in _request_properties(schema).items()
    }
    assert {op: names for op, names in offenders.items() if names} == {}
    assert any(CREDENTIAL_PATH in op for op in offenders)  # the exception above is about operations that exist


async def test_a_provider_credential_takes_no_address(api: Api) -> None:
    headers = await api.user("ada@example.com")
    for field in ("base_url", "api_base", "endpoint", "host"):
        body = {"api_key": "sk-some-key-0000", field: TARGETS[0]}
        assert_problem(await api.http.put("/api/v1/provider-credentials/openai", json=body, headers=headers), 422)
    for address in ("169.254.169.254", "localhost:5432"):
        addressed = await api.http.put(
            f"/api/v1/provider-credentials/{address}", json={"api_key": "sk-k-0000"}, headers=headers
        )
        assert_problem(addressed, 400, "provider_not_supported")  # a name, looked up; never dialled


async def test_address_fields_are_refused_not_ignored(api: Api) -> None:
    headers = await api.user("ada@example.com")
    cid = await conversation(api, headers)
    for field in ("base_url", "api_base", "api_key", "provider", "endpoint"):
        for target in TARGETS[:1]:
            assert_problem(await api.http.post("/api/v1/conversations", json={field: target}, headers=headers), 422)
            patch = await api.http.patch(f"/api/v1/conversations/{cid}", json={field: target}, headers=headers)
            assert_problem(patch, 422)
            post = await api.http.post(
                f"/api/v1/conversations/{cid}/messages", json={"content": "hi", field: target}, headers=headers
            )
            assert_problem(post, 422)


async def test_a_model_name_is_looked_up_never_dialled(
    api_on_upstream: Callable[..., Any], upstream: FakeUpstream
) -> None:
    async with api_on_upstream() as api:
        headers = await api.user("ada@example.com")
        cid = await conversation(api, headers, model="solo")
        for target in TARGETS:
            created = await api.http.post("/api/v1/conversations", json={"model": target}, headers=headers)
            assert "unknown model" in assert_problem(created, 422)["detail"]
            patched = await api.http.patch(f"/api/v1/conversations/{cid}", json={"model": target}, headers=headers)
            assert_problem(patched, 422)
        assert upstream.requests == []


async def test_an_upstream_redirect_is_not_followed(
    api_on_upstream: Callable[..., Any], upstream: FakeUpstream
) -> None:
    async with api_on_upstream(upstream_max_attempts=1) as api:
        headers = await api.user("ada@example.com")
        cid = await conversation(api, headers, model="solo")
        upstream.push(fake.redirect(f"{upstream.base_url}/_fake/stats"))
        posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=headers)
        assert_problem(posted, 502, "upstream_bad_response")
        assert [r.path for r in upstream.requests] == ["/v1/chat/completions"]


async def test_no_provider_credential_is_ever_stored(
    api_on_upstream: Callable[..., Any], upstream: FakeUpstream
) -> None:
    from tests.security.conftest import OPENAI_KEY

    async with api_on_upstream() as api:
        headers = await api.user("ada@example.com")
        cid = await conversation(api, headers, model="solo")
        await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=headers)
        store = api.app.state.container.uow().store
        assert OPENAI_KEY not in repr(store.__dict__)
        assert upstream.last_request.api_key == OPENAI_KEY  # it came from the operator's environment

"""What the Azure OpenAI adapter sends (the deployment in the path, ``api-version``, the ``api-key`` header or a
bearer token) and how its content filter's refusal reaches the caller. Against the fake upstream on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from domain.shared.errors import ContentFiltered, UpstreamAuthError
from infrastructure.llm.azure_openai import AZURE_API_VERSION, AzureOpenAIProvider
from tests.contract.test_llm_providers import HELLO, SECRET, azure_spec, azure_transport, collect
from tests.fakes.upstream import FakeUpstream, auth_error, content_filtered

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
async def fake_server() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
def upstream(fake_server: FakeUpstream) -> FakeUpstream:
    fake_server.reset()
    return fake_server


async def test_the_deployment_goes_in_the_path_with_the_api_version_and_the_key_header(upstream: FakeUpstream) -> None:
    adapter = AzureOpenAIProvider(azure_spec(max_output_tokens=9), transport=azure_transport(upstream), api_key=SECRET)
    try:
        await adapter.complete(HELLO)
        await collect(adapter.stream(HELLO))
    finally:
        await adapter.aclose()

    for sent in upstream.requests:
        assert sent.path == "/openai/deployments/gpt-4o-mini/chat/completions"
        assert sent.query == f"api-version={AZURE_API_VERSION}"
        assert sent.headers["api-key"] == SECRET
        assert "authorization" not in sent.headers
    assert upstream.requests[1].json["stream"] is True


async def test_a_named_deployment_a_pinned_version_and_an_entra_id_token(upstream: FakeUpstream) -> None:
    transport = azure_transport(upstream, deployment="prod-gpt", api_version="2025-01-01-preview", auth="bearer")
    adapter = AzureOpenAIProvider(azure_spec(), transport=transport, api_key="entra-token")
    try:
        await adapter.complete(HELLO)
    finally:
        await adapter.aclose()

    sent = upstream.last_request
    assert sent.path == "/openai/deployments/prod-gpt/chat/completions"
    assert sent.query == "api-version=2025-01-01-preview"
    assert sent.headers["authorization"] == "Bearer entra-token"
    assert "api-key" not in sent.headers


async def test_the_content_filter_is_a_clear_refusal_of_the_prompt(upstream: FakeUpstream) -> None:
    upstream.push(content_filtered(), content_filtered())
    adapter = AzureOpenAIProvider(azure_spec(), transport=azure_transport(upstream), api_key=SECRET)
    try:
        with pytest.raises(ContentFiltered, match="content filter refused") as whole:
            await adapter.complete(HELLO)
        with pytest.raises(ContentFiltered):
            await collect(adapter.stream(HELLO))
    finally:
        await adapter.aclose()
    assert not whole.value.retryable
    assert "content management policy" in whole.value.detail


async def test_a_refused_key_is_an_auth_error_that_never_shows_the_key(upstream: FakeUpstream) -> None:
    upstream.push(auth_error())
    adapter = AzureOpenAIProvider(azure_spec(), transport=azure_transport(upstream), api_key=SECRET)
    try:
        with pytest.raises(UpstreamAuthError) as refused:
            await adapter.complete(HELLO)
    finally:
        await adapter.aclose()
    assert SECRET not in str(refused.value)
    assert SECRET not in repr(adapter)

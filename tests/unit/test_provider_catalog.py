"""Azure OpenAI, Gemini and Bedrock in the catalog: what each requires, what it defaults to, what it refuses."""

from __future__ import annotations

import pytest

from infrastructure.llm.catalog import CatalogError, parse_catalog
from infrastructure.llm.registry import build_router
from infrastructure.settings import Settings
from tests.fakes.upstream import FakeUpstream
from tests.fakes.upstream.bedrock_routes import ACCESS_KEY, REGION, SECRET_KEY

pytestmark = pytest.mark.unit

ENV = {"AZURE_OPENAI_API_KEY": "k"}
AZURE = """
[models.gpt]
provider = "azure_openai"
upstream_model = "gpt-4o"
base_url = "https://my-resource.openai.azure.com"
api_key_env = "AZURE_OPENAI_API_KEY"
"""


def test_an_azure_deployment_sends_its_key_as_api_key_unless_told_otherwise() -> None:
    transport = parse_catalog(AZURE, env=ENV).transport("gpt")
    assert (transport.auth, transport.deployment, transport.api_version) == ("api-key", None, None)
    told = parse_catalog(AZURE + 'auth = "bearer"\ndeployment = "prod"\napi_version = "2025-01-01-preview"\n', env=ENV)
    transport = told.transport("gpt")
    assert (transport.auth, transport.deployment, transport.api_version) == ("bearer", "prod", "2025-01-01-preview")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (AZURE.replace('base_url = "https://my-resource.openai.azure.com"\n', ""), "base_url is required"),
        (AZURE.replace('api_key_env = "AZURE_OPENAI_API_KEY"\n', ""), "api_key_env is required"),
        (AZURE + 'client = "sdk"\n', "only the direct client"),
        (AZURE + 'auth = "password"\n', "auth must be one of api-key, bearer"),
        (
            '[models.m]\nprovider = "openai"\nupstream_model = "x"\napi_key_env = "K"\nfree = true\ndeployment = "d"\n',
            "for provider",
        ),
    ],
)
def test_azure_mistakes_stop_start_up(text: str, says: str) -> None:
    with pytest.raises(CatalogError, match=says):
        parse_catalog(text, env={**ENV, "K": "k"})


def test_a_gemini_model_needs_only_its_key_and_speaks_to_googles_api_by_default() -> None:
    text = '[models.g]\nprovider = "gemini"\nupstream_model = "gemini-2.5-flash"\napi_key_env = "GEMINI_API_KEY"\n'
    catalog = parse_catalog(text, env={"GEMINI_API_KEY": "k"})
    assert catalog.transport("g").base_url is None  # the adapter's default: Google's public API
    with pytest.raises(CatalogError, match="api_key_env is required"):
        parse_catalog(text.replace('api_key_env = "GEMINI_API_KEY"\n', ""), env={})
    with pytest.raises(CatalogError, match="only the direct client"):
        parse_catalog(text + 'client = "sdk"\n', env={"GEMINI_API_KEY": "k"})


BEDROCK = '[models.claude]\nprovider = "bedrock"\nupstream_model = "anthropic.claude-3-5-haiku-20241022-v1:0"\n'


def test_a_bedrock_model_takes_its_region_from_the_catalog_or_the_aws_environment() -> None:
    assert parse_catalog(BEDROCK + 'region = "eu-west-3"\n', env={}).transport("claude").region == "eu-west-3"
    assert parse_catalog(BEDROCK, env={"AWS_REGION": "us-west-2"}).transport("claude").region == "us-west-2"
    with pytest.raises(CatalogError, match="must name an AWS region"):
        parse_catalog(BEDROCK, env={})
    with pytest.raises(CatalogError, match="region is for provider bedrock"):
        parse_catalog('[models.m]\nprovider = "local"\nupstream_model = "x"\nregion = "us-east-1"\n', env={})


async def test_the_router_signs_with_the_aws_environments_credentials() -> None:
    from domain.llm.model import ChatMessage, ChatRole, CompletionRequest

    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION}
    async with FakeUpstream() as up:
        catalog = parse_catalog(BEDROCK + f'base_url = "{up.base_url}"\n', env=env)
        router = build_router(catalog, Settings(), env)
        try:
            request = CompletionRequest(model="claude", messages=(ChatMessage(ChatRole.USER, "hi"),))
            completion = await router.complete(request)
        finally:
            await router.aclose()
    assert completion.content == "Echo: hi"
    assert completion.served_by.provider == "bedrock"

"""Azure OpenAI in the catalog: its base URL and key are required, its own keys are refused elsewhere."""

from __future__ import annotations

import pytest

from infrastructure.llm.catalog import CatalogError, parse_catalog

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
            '[models.m]\nprovider = "openai"\nupstream_model = "x"\napi_key_env = "K"\ndeployment = "d"\n',
            "for provider",
        ),
    ],
)
def test_azure_mistakes_stop_start_up(text: str, says: str) -> None:
    with pytest.raises(CatalogError, match=says):
        parse_catalog(text, env={**ENV, "K": "k"})
